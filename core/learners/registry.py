"""Learners by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def make_learner(config: LearnerConfig, in_channels: int, image_size: int) -> MetaLearner:
    """Build the learner `config.method` for images of (in_channels, image_size, image_size)."""
    return LEARNERS[config.method](config, in_channels, image_size)
