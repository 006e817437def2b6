"""The learned optimizer: starts as exactly SGD (the finetune baseline), reads Andrychowicz's inputs, meta-learns."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.config import LearnerConfig
from core.learners.functional import last
from core.learners.learned_optimizer import CoordinateLSTM, FineTune, LearnedOptimizer, preprocess_gradient
from tests.test_maml import LR, N_WAY, Tiny, episode, hand_sgd, zero_head

STEPS = 4


def learned_optimizer(seed=0, first_order=False) -> LearnedOptimizer:
    torch.manual_seed(seed)
    config = LearnerConfig(method="learned_optimizer", inner_steps=STEPS, inner_lr=LR, first_order=first_order, hidden=8)
    return LearnedOptimizer(config, 1, 4, backbone=Tiny()).double()


def adapted_head(learner, support_x, support_y, query_x):
    task = learner.task(support_x, query_x, N_WAY)
    return last(learner.adapt(task, support_y, track=False))


def test_preprocessing_follows_andrychowicz():
    x = torch.tensor([1.0, -math.exp(-5), 1e-6, 0.0], dtype=torch.float64)
    expected = torch.tensor([[0.0, 1.0], [-0.5, -1.0], [-1.0, math.exp(10) * 1e-6], [-1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(preprocess_gradient(x), expected)


def test_a_new_rule_is_sgd_whatever_its_lstm_weights():
    rule = CoordinateLSTM(hidden=5, lr=0.3).double()
    with torch.no_grad():
        for p in rule.cell.parameters():
            p.normal_()
    grad = torch.randn(11, dtype=torch.float64)
    state = None
    for _ in range(3):  # the state evolves; the output must not depend on it
        step, state = rule(grad, torch.tensor(1.7, dtype=torch.float64), state)
        torch.testing.assert_close(step, -0.3 * grad)


def test_new_learned_optimizer_reproduces_finetune_sgd():
    support_x, support_y, query_x, query_y = episode()
    learner = learned_optimizer()
    with torch.no_grad():
        for p in learner.rule.cell.parameters():  # a trained-looking LSTM: the zero output layer still fixes the rule
            p.normal_()
    tuner = FineTune.from_learner(learner)
    assert tuner.config.method == "finetune" and tuner.config.inner_steps == STEPS
    learned, sgd = adapted_head(learner, support_x, support_y, query_x), adapted_head(tuner, support_x, support_y, query_x)
    for key in ("head.weight", "head.bias"):
        torch.testing.assert_close(learned[key], sgd[key])
    # and SGD written by hand on the fixed features
    features = learner.backbone(support_x).detach()
    head = hand_sgd(zero_head(), lambda w, b: F.cross_entropy(features @ w.T + b, support_y), STEPS)
    torch.testing.assert_close(learned["head.weight"], head[0])
    torch.testing.assert_close(
        learner.adapt_trace(support_x, support_y, query_x, query_y, N_WAY),
        tuner.adapt_trace(support_x, support_y, query_x, query_y, N_WAY),
    )


def test_sgd_trace_compares_from_the_same_start():
    support_x, support_y, query_x, query_y = episode()
    learner = learned_optimizer()
    with torch.no_grad():
        learner.rule.out.weight.normal_(std=0.5)
    sgd_trace = learner.adapt_trace(support_x, support_y, query_x, query_y, N_WAY, update="sgd")
    assert sgd_trace == FineTune.from_learner(learner).adapt_trace(support_x, support_y, query_x, query_y, N_WAY)
    learned_trace = learner.adapt_trace(support_x, support_y, query_x, query_y, N_WAY, update="learned")
    assert learned_trace[0] == sgd_trace[0] and learned_trace[-1]["loss"] != pytest.approx(sgd_trace[-1]["loss"])
    with pytest.raises(ValueError, match="learned"):
        learner.adapt_trace(support_x, support_y, query_x, query_y, N_WAY, update="adam")


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_reaches_the_rule_and_the_backbone(first_order):
    support_x, support_y, query_x, query_y = episode()
    learner = learned_optimizer(first_order=first_order)
    loss, _ = learner.episode_loss(support_x, support_y, query_x, query_y, N_WAY)
    loss.backward()
    assert learner.rule.out.weight.grad.abs().sum() > 0 and learner.rule.out.bias.grad[0] != 0
    assert learner.backbone.fc.weight.grad.abs().sum() > 0
    # zero output weights block the path into the LSTM until the first outer step moves them
    assert learner.rule.cell.weight_ih.grad is None or learner.rule.cell.weight_ih.grad.abs().sum() == 0
    torch.optim.SGD(learner.parameters(), lr=0.1).step()
    learner.zero_grad()
    learner.episode_loss(support_x, support_y, query_x, query_y, N_WAY)[0].backward()
    assert learner.rule.cell.weight_ih.grad.abs().sum() > 0


def test_meta_training_the_rule_lowers_the_query_loss():
    """A few outer steps on one task (rule only, backbone frozen) beat plain SGD on that task."""
    support_x, support_y, query_x, query_y = episode()
    learner = learned_optimizer()
    learner.backbone.requires_grad_(False)
    optimizer = torch.optim.Adam(learner.rule.parameters(), lr=0.02)
    for _ in range(30):
        optimizer.zero_grad()
        learner.episode_loss(support_x, support_y, query_x, query_y, N_WAY)[0].backward()
        optimizer.step()
    learned = learner.adapt_trace(support_x, support_y, query_x, query_y, N_WAY)[-1]["loss"]
    sgd = learner.adapt_trace(support_x, support_y, query_x, query_y, N_WAY, update="sgd")[-1]["loss"]
    assert learned < 0.9 * sgd
