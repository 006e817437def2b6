"""Evaluation: CI formula, fast (embed once) path equals episode-by-episode, confusion and F1."""

from __future__ import annotations

import math

import pytest
import torch

from core.config import EpisodeShape, LearnerConfig
from core.episodes import ClassPool, EpisodeSampler
from core.evaluation import evaluate, mean_ci95, per_class_scores, predict_episodes
from core.learners import make_learner
from tests.conftest import make_toy_set


def test_mean_ci95_matches_formula():
    values = torch.tensor([0.2, 0.4, 0.6, 0.8])
    mean, ci = mean_ci95(values)
    std = math.sqrt(sum((v - 0.5) ** 2 for v in [0.2, 0.4, 0.6, 0.8]) / 3)
    assert mean == pytest.approx(0.5) and ci == pytest.approx(1.96 * std / 2)


def test_per_class_scores_by_hand():
    confusion = torch.tensor([[8, 2], [4, 6]])  # rows true, columns predicted
    precision, recall, f1 = per_class_scores(confusion)
    assert precision.tolist() == pytest.approx([8 / 12, 6 / 8])
    assert recall.tolist() == pytest.approx([0.8, 0.6])
    assert f1[0].item() == pytest.approx(2 * (8 / 12) * 0.8 / (8 / 12 + 0.8))


def test_fast_path_equals_episode_by_episode():
    image_set = make_toy_set(n_classes=12, size=16)
    pool = ClassPool(image_set, list(range(12)))
    torch.manual_seed(0)
    learner = make_learner(LearnerConfig(), 1, 16).eval()
    fast = predict_episodes(learner, EpisodeSampler(pool, 5, 1, 3, seed=3), 20)

    class Slow(type(learner)):
        embedding_only = False

    slow_learner = Slow(learner.config, 1, 16).eval()
    slow_learner.load_state_dict(learner.state_dict())
    slow = predict_episodes(slow_learner, EpisodeSampler(pool, 5, 1, 3, seed=3), 20)
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


def test_evaluate_pixel_baseline_on_easy_data_and_confusion_sums():
    image_set = make_toy_set(n_classes=10, size=16)
    pool = ClassPool(image_set, list(range(10)))
    result = evaluate(make_learner(LearnerConfig(method="pixel_nn"), 1, 16), pool, EpisodeShape(5, 1, 4), episodes=50)
    assert 0.2 < result.accuracy <= 1.0 and result.ci95 >= 0
    assert sum(map(sum, result.confusion)) == 50 * 5 * 4
    assert len(result.class_names) == 10 and len(result.f1) == 10
    assert result.summary().startswith("accuracy: ")
    assert result.accuracy == pytest.approx(sum(result.episode_accuracy) / 50)
