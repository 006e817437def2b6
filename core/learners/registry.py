"""Learners by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.learners.base import MetaLearner
from core.learners.pixel_nn import PixelNN
from core.learners.protonet import ProtoNet

if TYPE_CHECKING:
    from core.config import LearnerConfig

LEARNERS: dict[str, type[MetaLearner]] = {cls.name: cls for cls in (ProtoNet, PixelNN)}


def make_learner(config: LearnerConfig, in_channels: int, image_size: int) -> MetaLearner:
    """Build the learner `config.method` for images of (in_channels, image_size, image_size)."""
    return LEARNERS[config.method](config, in_channels, image_size)
