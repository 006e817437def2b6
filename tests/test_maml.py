"""MAML, first-order MAML, ANIL and Reptile: invariants against hand-written inner loops on a tiny model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.config import EpisodeShape, LearnerConfig, TrainConfig
from core.episodes import ClassPool, EpisodeSampler
from core.evaluation import evaluate
from core.learners import make_learner
from core.learners.anil import ANIL
from core.learners.functional import FastWeightLearner
from core.learners.maml import FOMAML, MAML
from core.learners.reptile import Reptile
from core.training.trainer import Trainer
from tests.conftest import make_toy_set

N_WAY, LR = 3, 0.5
OPTIMIZATION_METHODS = ("maml", "fomaml", "reptile", "anil", "learned_optimizer", "finetune")


class Tiny(nn.Module):
    """tanh(W x + b) on flattened 4x4 images: small enough to write its inner loop by hand."""

    out_dim = 6

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 6)

    def forward(self, x):
        return torch.tanh(self.fc(x.flatten(1)))


def tiny_logits(w, b, head_w, head_b, x):
    return torch.tanh(x.flatten(1) @ w.T + b) @ head_w.T + head_b


def build(cls, steps=2, first_order=False, seed=0):
    torch.manual_seed(seed)
    config = LearnerConfig(method=cls.name, inner_steps=steps, inner_lr=LR, first_order=first_order)
    return cls(config, 1, 4, backbone=Tiny()).double()


def episode(seed=0, k_shot=2, q_query=3):
    g = torch.Generator().manual_seed(seed)
    support_y = torch.arange(N_WAY).repeat_interleave(k_shot)
    query_y = torch.arange(N_WAY).repeat_interleave(q_query)
    support_x = torch.randn(support_y.numel(), 1, 4, 4, generator=g, dtype=torch.float64)
    query_x = torch.randn(query_y.numel(), 1, 4, 4, generator=g, dtype=torch.float64)
    return support_x, support_y, query_x, query_y


def zero_head():
    return [torch.zeros(N_WAY, 6, dtype=torch.float64), torch.zeros(N_WAY, dtype=torch.float64)]


def hand_sgd(weights, loss_fn, steps):
    """The reference inner loop: `steps` plain SGD steps of LR on loss_fn(*weights), as fresh leaves."""
    weights = [t.detach().clone().requires_grad_() for t in weights]
    for _ in range(steps):
        grads = torch.autograd.grad(loss_fn(*weights), weights)
        weights = [(t - LR * g).detach().requires_grad_() for t, g in zip(weights, grads, strict=True)]
    return weights


def hand_adapt(w, b, support_x, support_y, steps):
    """SGD on all weights of the tiny model, the head starting at zero."""
    return hand_sgd([w, b, *zero_head()], lambda *ws: F.cross_entropy(tiny_logits(*ws, support_x), support_y), steps)


def flat(grads):
    return torch.cat([g.flatten() for g in grads])


def backbone_grads(learner, support_x, support_y, query_x, query_y):
    learner.zero_grad()
    loss, _ = learner.episode_loss(support_x, support_y, query_x, query_y, N_WAY)
    loss.backward()
    return flat([learner.backbone.fc.weight.grad, learner.backbone.fc.bias.grad])


class SeededHead(MAML):
    """MAML with a fixed random head instead of zeros, so that zero steps give non-trivial logits."""

    def initial_head(self, n_way, like):
        g = torch.Generator().manual_seed(7)
        return {
            "head.weight": torch.randn(n_way, self.feature_dim, generator=g, dtype=like.dtype).requires_grad_(),
            "head.bias": torch.randn(n_way, generator=g, dtype=like.dtype).requires_grad_(),
        }


def test_zero_steps_give_the_base_model_and_its_gradient():
    support_x, support_y, query_x, query_y = episode()
    grads = {}
    for first_order in (False, True):
        learner = build(SeededHead, steps=0, first_order=first_order)
        head = learner.initial_head(N_WAY, support_x)
        expected = tiny_logits(learner.backbone.fc.weight, learner.backbone.fc.bias, head["head.weight"], head["head.bias"], query_x)
        torch.testing.assert_close(learner(support_x, support_y, query_x, N_WAY), expected)
        grads[first_order] = backbone_grads(learner, support_x, support_y, query_x, query_y)
    # no inner step, no second-order term: both orders give the plain gradient of the query loss
    w, b = (t.detach().clone().requires_grad_() for t in (learner.backbone.fc.weight, learner.backbone.fc.bias))
    reference = torch.autograd.grad(F.cross_entropy(tiny_logits(w, b, head["head.weight"], head["head.bias"], query_x), query_y), (w, b))
    torch.testing.assert_close(grads[False], flat(reference))
    torch.testing.assert_close(grads[True], grads[False])


def test_zero_head_starts_every_task_uniform():
    support_x, support_y, query_x, _ = episode()
    logits = build(MAML, steps=0)(support_x, support_y, query_x, N_WAY)
    assert torch.equal(logits, torch.zeros(query_x.shape[0], N_WAY, dtype=torch.float64))


@pytest.mark.parametrize("cls, first_order", [(FOMAML, False), (MAML, True)], ids=["fomaml", "maml-first-order"])
def test_first_order_gradient_matches_hand_written_reference(cls, first_order):
    support_x, support_y, query_x, query_y = episode()
    learner = build(cls, steps=3, first_order=first_order)
    fc = learner.backbone.fc
    adapted = hand_adapt(fc.weight, fc.bias, support_x, support_y, steps=3)
    torch.testing.assert_close(learner(support_x, support_y, query_x, N_WAY), tiny_logits(*adapted, query_x))
    # first order: the query-loss gradient at the adapted weights is the outer gradient
    reference = torch.autograd.grad(F.cross_entropy(tiny_logits(*adapted, query_x), query_y), adapted[:2])
    torch.testing.assert_close(backbone_grads(learner, support_x, support_y, query_x, query_y), flat(reference))


def test_second_order_gradient_adds_the_hessian_term():
    """One step: d L_q(θ − α∇L_s(θ)) / dθ = g − α·H_s(θ)·g, with g = ∇L_q at the adapted weights."""
    support_x, support_y, query_x, query_y = episode()
    learner = build(MAML, steps=1)
    fc = learner.backbone.fc
    adapted = hand_adapt(fc.weight, fc.bias, support_x, support_y, steps=1)
    g = torch.autograd.grad(F.cross_entropy(tiny_logits(*adapted, query_x), query_y), adapted)
    start = [fc.weight.detach(), fc.bias.detach(), *zero_head()]
    support_loss = lambda *w: F.cross_entropy(tiny_logits(*w, support_x), support_y)
    _, hg = torch.autograd.functional.hvp(support_loss, tuple(start), g)
    expected = flat([g[0] - LR * hg[0], g[1] - LR * hg[1]])

    second = backbone_grads(learner, support_x, support_y, query_x, query_y)
    torch.testing.assert_close(second, expected)
    first = backbone_grads(build(MAML, steps=1, first_order=True), support_x, support_y, query_x, query_y)
    assert (second - first).norm() > 0.05 * first.norm()  # the Hessian term is not negligible here


def test_anil_adapts_only_the_head():
    support_x, support_y, query_x, query_y = episode()
    learner = build(ANIL, steps=3, first_order=True)
    fc = learner.backbone.fc
    features = torch.tanh(support_x.flatten(1) @ fc.weight.T + fc.bias).detach()
    head = hand_sgd(zero_head(), lambda hw, hb: F.cross_entropy(features @ hw.T + hb, support_y), steps=3)
    torch.testing.assert_close(learner(support_x, support_y, query_x, N_WAY), tiny_logits(fc.weight, fc.bias, *head, query_x))
    # first-order ANIL: the backbone learns through the query features only, the head held at its adapted value
    w, b = (t.detach().clone().requires_grad_() for t in (fc.weight, fc.bias))
    reference = torch.autograd.grad(F.cross_entropy(tiny_logits(w, b, *head, query_x), query_y), (w, b))
    torch.testing.assert_close(backbone_grads(learner, support_x, support_y, query_x, query_y), flat(reference))
    second = backbone_grads(build(ANIL, steps=3), support_x, support_y, query_x, query_y)
    assert not torch.allclose(second, flat(reference))


def test_reptile_surrogate_gradient_is_theta_minus_adapted():
    support_x, support_y, query_x, query_y = episode()
    learner = build(Reptile, steps=4)
    fc = learner.backbone.fc
    adapted = hand_adapt(fc.weight, fc.bias, support_x, support_y, steps=4)
    learner.zero_grad()
    loss, logits = learner.episode_loss(support_x, support_y, query_x, query_y, N_WAY)
    loss.backward()
    torch.testing.assert_close(fc.weight.grad, fc.weight.detach() - adapted[0].detach())
    torch.testing.assert_close(fc.bias.grad, fc.bias.detach() - adapted[1].detach())
    torch.testing.assert_close(logits, tiny_logits(*adapted, query_x).detach())
    # with plain SGD of rate ε the optimizer step is θ + ε(θ' − θ)
    before = fc.weight.detach().clone()
    torch.optim.SGD(learner.parameters(), lr=0.25).step()
    torch.testing.assert_close(fc.weight.detach(), before + 0.25 * (adapted[0].detach() - before))


def conv4_learner(method: str, **settings) -> FastWeightLearner:
    torch.manual_seed(0)
    return make_learner(LearnerConfig(**{"method": method, "inner_steps": 2, "inner_lr": 0.05, **settings}), 1, 16)


def toy_episode(n_way=3, seed=0):
    pool = ClassPool(make_toy_set(n_classes=10, size=16), list(range(10)))
    return EpisodeSampler(pool, n_way, 1, 4, seed=seed).sample()


@pytest.mark.parametrize("method", OPTIMIZATION_METHODS)
def test_forward_is_stateless_and_the_same_in_train_and_eval(method):
    learner = conv4_learner(method)
    assert not any("running" in k for k in learner.state_dict())  # BatchNorm keeps no statistics to drift
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    ep = toy_episode()
    train_logits = learner.train()(ep.support_x, ep.support_y, ep.query_x, 3)
    with torch.no_grad():
        eval_logits = learner.eval()(ep.support_x, ep.support_y, ep.query_x, 3)
    learner.adapt_trace(ep.support_x, ep.support_y, ep.query_x, ep.query_y, 3)
    learner.explain(ep.support_x, ep.support_y, ep.query_x, 3)
    assert all(torch.equal(before[k], v) for k, v in learner.state_dict().items())
    assert all(p.grad is None for p in learner.parameters())
    torch.testing.assert_close(train_logits.detach(), eval_logits)
    assert not eval_logits.requires_grad


@pytest.mark.parametrize("n_way", [2, 7])
def test_any_n_way_at_test_time(n_way):
    learner = conv4_learner("maml").eval()
    ep = toy_episode(n_way)
    with torch.no_grad():
        assert learner(ep.support_x, ep.support_y, ep.query_x, n_way).shape == (4 * n_way, n_way)


def test_adapt_trace_follows_the_inner_loop():
    learner = conv4_learner("maml", first_order=True)
    ep = toy_episode()
    trace = learner.adapt_trace(ep.support_x, ep.support_y, ep.query_x, ep.query_y, 3)
    assert [t["step"] for t in trace] == [0, 1, 2]
    assert trace[0]["loss"] == pytest.approx(torch.log(torch.tensor(3.0)).item())  # the zero head: uniform
    assert trace[-1]["support_loss"] < trace[0]["support_loss"]
    explained = learner.explain(ep.support_x, ep.support_y, ep.query_x, 3)
    assert trace[-1]["loss"] == pytest.approx(F.cross_entropy(explained["logits"], ep.query_y).item(), rel=1e-5)


def test_a_bad_backbone_is_refused_with_a_message():
    with pytest.raises(ValueError, match="out_dim"):
        MAML(LearnerConfig(method="maml"), 1, 4, backbone=nn.Linear(16, 4))


@pytest.mark.parametrize("method", OPTIMIZATION_METHODS)
def test_meta_training_runs_and_checkpoints_load_back(method):
    image_set = make_toy_set(n_classes=12, size=16)
    pool = ClassPool(image_set, list(range(12)))
    learner = conv4_learner(method)
    config = TrainConfig(episodes=3, meta_batch=2, lr=1e-3, log_every=3, val_every=0, rotations=False)
    Trainer(learner, EpisodeSampler(pool, 3, 1, 2, seed=0), config).fit()
    clone = conv4_learner(method)
    clone.load_state_dict(learner.state_dict(), strict=True)
    shape = EpisodeShape(3, 1, 3)
    first, second = evaluate(learner, pool, shape, episodes=3), evaluate(clone, pool, shape, episodes=3)
    assert first.episode_accuracy == second.episode_accuracy


def mean_query_loss(learner, episodes) -> float:
    with torch.no_grad():
        return sum(F.cross_entropy(learner(e.support_x, e.support_y, e.query_x, 5), e.query_y).item() for e in episodes) / len(episodes)


@pytest.mark.slow
@pytest.mark.parametrize("method, inner_steps", [("fomaml", 2), ("reptile", 5)])
def test_meta_training_lowers_the_loss_after_adaptation(method, inner_steps):
    pool = ClassPool(make_toy_set(n_classes=20, size=16), list(range(20)))
    sampler = EpisodeSampler(pool, 5, 1, 5, seed=1)
    fixed = [sampler.sample() for _ in range(10)]
    learner = conv4_learner(method, inner_steps=inner_steps)  # Reptile's meta-gradient grows with the steps taken
    before = mean_query_loss(learner, fixed)
    config = TrainConfig(episodes=40, lr=3e-3, log_every=10, val_every=0, rotations=False)
    Trainer(learner, EpisodeSampler(pool, 5, 1, 5, seed=0), config).fit()
    assert mean_query_loss(learner, fixed) < 0.8 * before
