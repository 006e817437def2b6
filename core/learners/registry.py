"""Learners by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from core.errors import ConfigError
from core.learners.anil import ANIL
from core.learners.base import MetaLearner
from core.learners.blackbox import BlackBox
from core.learners.learned_optimizer import FineTune, LearnedOptimizer
from core.learners.maml import FOMAML, MAML
from core.learners.matching import MatchingNet
from core.learners.pixel_nn import PixelNN
from core.learners.protonet import ProtoNet
from core.learners.relation import RelationNet
from core.learners.reptile import Reptile
from core.learners.siamese import SiameseNet
from core.learners.triplet import TripletNet

if TYPE_CHECKING:
    from core.config import LearnerConfig

LEARNERS: dict[str, type[MetaLearner]] = {cls.name: cls for cls in (ProtoNet, PixelNN)}
# metric-based learners
LEARNERS.update({cls.name: cls for cls in (MatchingNet, RelationNet, SiameseNet, TripletNet)})
# optimization-based learners
LEARNERS.update({cls.name: cls for cls in (MAML, FOMAML, Reptile, ANIL, LearnedOptimizer, FineTune)})
# model-based learners
LEARNERS[BlackBox.name] = BlackBox


def learner_class(method: str) -> type[MetaLearner]:
    """The class registered as `method`; ConfigError listing the names otherwise."""
    if method not in LEARNERS:
        raise ConfigError(f"unknown learner '{method}'; choose one of: {', '.join(LEARNERS)}", "method")
    return LEARNERS[method]


def make_learner(config: LearnerConfig, in_channels: int, image_size: int, seed: int | None = None) -> MetaLearner:
    """Build the learner `config.method` for images of (in_channels, image_size, image_size).

    seed: the initial weights then depend on it alone (torch's global generator is left as it was),
    so a run, the dashboard's untrained baseline and the benchmark start from the same weights.
    """
    cls = learner_class(config.method)
    if seed is None:
        return cls(config, in_channels, image_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(config, in_channels, image_size)
