"""One episode through several learners: predictions as each learner's own, disagreements, accuracies, inner loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.analysis.comparison import compare_learners
from core.config import LearnerConfig
from core.data import DataError
from core.episodes import ClassPool, EpisodeSampler
from core.learners import make_learner
from tests.conftest import make_toy_set


@pytest.fixture(scope="module")
def episode():
    return EpisodeSampler(ClassPool(make_toy_set(n_classes=12, per_class=10, size=16), range(12)), 4, 1, 3, seed=2).sample()


def learner(method: str, **settings):
    return make_learner(LearnerConfig(method=method, **settings), 1, 16, seed=0).eval()


def test_each_learner_predicts_what_its_own_forward_says(episode):
    learners = {"protonet": learner("protonet"), "pixels": learner("pixel_nn"), "cosine": learner("protonet", distance="cosine")}
    result = compare_learners(learners, episode)
    assert [o.name for o in result.outcomes] == list(learners) and result.predicted.shape == (3, 12)
    for outcome, model in zip(result.outcomes, learners.values(), strict=True):
        with torch.no_grad():
            logits = model(episode.support_x, episode.support_y, episode.query_x)
        np.testing.assert_array_equal(outcome.predicted, logits.argmax(1).numpy())
        np.testing.assert_allclose(outcome.confidence, logits.softmax(1).max(1).values.numpy(), rtol=1e-5)
        assert outcome.accuracy == pytest.approx(float((logits.argmax(1) == episode.query_y).float().mean()))
        assert outcome.inner_accuracy is None  # no inner loop
    predicted = result.predicted
    np.testing.assert_array_equal(result.disagree, [len(set(predicted[:, q])) > 1 for q in range(12)])
    np.testing.assert_array_equal(result.right, (predicted == episode.query_y.numpy()).sum(0))


def test_a_learner_never_disagrees_with_itself(episode):
    same = learner("protonet")
    assert not compare_learners({"a": same, "b": same}, episode).disagree.any()


def test_the_maml_family_reports_accuracy_after_each_inner_step(episode):
    maml = learner("maml", inner_steps=3)
    outcome = compare_learners({"maml": maml}, episode).outcomes[0]
    assert len(outcome.inner_accuracy) == 4  # before adapting, then after each of 3 steps
    assert outcome.inner_accuracy[0] == pytest.approx(1 / 4)  # a zero head: every query gets the same guess
    assert outcome.inner_accuracy[-1] == pytest.approx(outcome.accuracy)  # the forward pass adapts the same 3 steps


def test_no_learner_or_the_wrong_images_are_refused(episode):
    with pytest.raises(ValueError, match="at least one learner"):
        compare_learners({}, episode)
    with pytest.raises(DataError, match="trained on"):
        compare_learners({"big": make_learner(LearnerConfig(), 1, 28, seed=0)}, episode)
