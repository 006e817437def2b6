"""Meta-learners: one file each, one interface (see base.py), a registry by name."""

from core.learners.base import MetaLearner
from core.learners.registry import LEARNERS, learner_class, make_learner

__all__ = ["LEARNERS", "MetaLearner", "learner_class", "make_learner"]
