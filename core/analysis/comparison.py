"""One episode through several learners: each query's prediction per learner, where they disagree, each one's
accuracy, and, for learners with an inner loop (the MAML family), the query accuracy after each inner step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from core.analysis.adaptation import adapts
from core.analysis.embeddings import check_input
from core.episodes import Episode
from core.learners import MetaLearner


@dataclass(frozen=True)
class LearnerOutcome:
    """One learner on the episode. predicted, confidence: (n_query,) episode class and its softmax probability;
    inner_accuracy: query accuracy before (step 0) and after each inner step, None for learners without one."""

    name: str
    predicted: np.ndarray
    confidence: np.ndarray
    accuracy: float
    inner_accuracy: tuple[float, ...] | None = None


@dataclass(frozen=True)
class EpisodeComparison:
    """true: (n_query,) episode classes of the queries; outcomes in the order the learners were given."""

    true: np.ndarray
    outcomes: tuple[LearnerOutcome, ...]

    @property
    def predicted(self) -> np.ndarray:
        """(n_learners, n_query) predicted episode classes."""
        return np.stack([o.predicted for o in self.outcomes])

    @property
    def disagree(self) -> np.ndarray:
        """(n_query,) True where the learners do not all predict the same class."""
        predicted = self.predicted
        return (predicted != predicted[:1]).any(0)

    @property
    def right(self) -> np.ndarray:
        """(n_query,) how many learners got each query right."""
        return (self.predicted == self.true[None]).sum(0)


@torch.no_grad()
def _outcome(name: str, learner: MetaLearner, episode: Episode) -> LearnerOutcome:
    check_input(learner, episode.support_x.shape[1:])  # a clear message, not a convolution's shape error
    was_training = learner.training
    learner.eval()
    try:
        logits = learner.explain(episode.support_x, episode.support_y, episode.query_x, episode.n_way)["logits"].float().cpu()
    finally:
        learner.train(was_training)
    confidence, predicted = logits.softmax(1).max(1)
    true = episode.query_y.cpu()
    return LearnerOutcome(name, predicted.numpy(), confidence.numpy(), float((predicted == true).float().mean()))


def compare_learners(learners: Mapping[str, MetaLearner], episode: Episode) -> EpisodeComparison:
    """Run `episode` through every learner (by name, in order): predictions, accuracies, inner-loop accuracies.

    Each learner must take the episode's images (DataError otherwise, naming the shapes); ValueError without learners."""
    if not learners:
        raise ValueError("give at least one learner to compare")
    outcomes = []
    for name, learner in learners.items():
        outcome = _outcome(name, learner, episode)
        if adapts(learner):  # the inner loop differentiates the fast weights: outside no_grad
            trace = learner.adapt_trace(episode.support_x, episode.support_y, episode.query_x, episode.query_y, episode.n_way)
            outcome = LearnerOutcome(name, outcome.predicted, outcome.confidence, outcome.accuracy, tuple(r["accuracy"] for r in trace))
        outcomes.append(outcome)
    return EpisodeComparison(episode.query_y.cpu().numpy(), tuple(outcomes))
