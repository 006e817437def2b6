"""E episodes in one forward pass: the same losses, gradients and batch-norm statistics as E episodes one by one.

Tolerance: float32, rtol 1e-4 and atol 1e-5 on losses and logits; on each gradient rtol 1e-4 and atol
1e-5 x max(1, its largest entry) (grouped convolutions sum in another order than E separate ones; the
differences seen stay below 1e-5 of the largest entry, which reaches 1e3 with ResNet-12's squared distances).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from core.config import ConfigError, EpisodeShape, LearnerConfig, TrainConfig
from core.episodes import ClassPool, EpisodeSampler
from core.learners import LEARNERS, make_learner
from core.models.ghost import ghost_batch_norm
from core.training.trainer import Trainer
from tests.conftest import make_toy_set

E, N_WAY, K_SHOT, Q_QUERY, SIZE = 3, 3, 2, 2, 16
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
OPTIMIZATION = {"maml", "fomaml", "anil", "reptile", "learned_optimizer", "finetune"}
# every learner that batches, with the settings that change its computation
CASES = [(m, {"inner_steps": 2} if m in OPTIMIZATION else {}) for m in sorted(LEARNERS) if LEARNERS[m].batched]
CASES += [("matching", {"fce": True}), ("protonet", {"distance": "cosine"})]


def build(method: str, **settings) -> nn.Module:
    torch.manual_seed(0)
    return make_learner(LearnerConfig(method=method, **settings), 1, SIZE).train()


@pytest.fixture(scope="module")
def batch():
    """E fixed episodes stacked: support (E, s, 1, 16, 16), labels (E, s), queries likewise."""
    g = torch.Generator().manual_seed(0)
    support_x = torch.rand(E, N_WAY * K_SHOT, 1, SIZE, SIZE, generator=g)
    query_x = torch.rand(E, N_WAY * Q_QUERY, 1, SIZE, SIZE, generator=g)
    support_y = torch.arange(N_WAY).repeat_interleave(K_SHOT).expand(E, -1)
    query_y = torch.arange(N_WAY).repeat_interleave(Q_QUERY).expand(E, -1)
    return support_x, support_y, query_x, query_y


def one_by_one(learner, batch):
    """Mean loss over the episodes run one at a time, backpropagated as the Trainer's per-episode path does."""
    losses, logits = [], []
    for episode in zip(*batch, strict=True):
        loss, out = learner.episode_loss(*episode, N_WAY)
        (loss / E).backward()
        losses.append(loss.detach())
        logits.append(out.detach())
    return torch.stack(losses), torch.stack(logits)


def grads(learner) -> dict[str, torch.Tensor]:
    return {k: p.grad for k, p in learner.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("method", "settings"), CASES, ids=[f"{m}-{'-'.join(map(str, s.values()))}" for m, s in CASES])
def test_batched_loss_gradient_and_running_statistics_equal_one_episode_at_a_time(method, settings, batch):
    assert_batched_equals_one_by_one(build(method, **settings), batch)


def test_resnet12_batches_exactly_in_float64(batch):
    """ResNet-12 on 16-pixel images ends in batch norms over 1 to 4 positions per image, which amplify float32
    rounding (gradients agree to 2e-3 of their largest entry); in float64 the two paths agree to 1e-13."""
    assert_batched_equals_one_by_one(
        build("protonet", backbone="resnet12").double(), [t.double() if t.is_floating_point() else t for t in batch]
    )


def assert_batched_equals_one_by_one(sequential: nn.Module, batch) -> None:
    batched = copy.deepcopy(sequential)
    assert type(batched).batched
    losses, logits = one_by_one(sequential, batch)
    batched_losses, batched_logits = batched.episode_loss_batched(*batch, N_WAY)
    batched_losses.mean().backward()
    assert batched_losses.shape == (E,) and batched_logits.shape == (E, N_WAY * Q_QUERY, N_WAY)
    torch.testing.assert_close(batched_losses.detach(), losses, **TOLERANCE)
    torch.testing.assert_close(batched_logits.detach(), logits, **TOLERANCE)
    expected = grads(sequential)
    assert expected and grads(batched).keys() == expected.keys()
    for name, grad in grads(batched).items():
        scale = max(1.0, expected[name].abs().max().item())
        torch.testing.assert_close(grad, expected[name], rtol=1e-4, atol=1e-5 * scale, msg=lambda m, name=name: f"{name}: {m}")
    # running statistics: E sequential updates (the MAML family keeps none)
    for (name, mine), theirs in zip(batched.named_buffers(), sequential.buffers(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")


def test_ghost_batch_norm_uses_each_episodes_statistics_and_updates_running_ones_in_order():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    x = torch.randn(E * 5, 4, 3, 3) * torch.arange(1, E + 1).repeat_interleave(5).view(-1, 1, 1, 1)  # episodes of different scales
    reference = copy.deepcopy(bn)
    expected = torch.cat([reference(part) for part in x.chunk(E)])
    torch.testing.assert_close(ghost_batch_norm(bn, x, E), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, reference.running_mean)
    torch.testing.assert_close(bn.running_var, reference.running_var)
    assert int(bn.num_batches_tracked) == E
    bn.eval(), reference.eval()  # evaluation: every episode normalised by the running statistics
    torch.testing.assert_close(ghost_batch_norm(bn, x, E), reference(x))


def test_cumulative_batch_norm_momentum_none_counts_every_episode():
    torch.manual_seed(0)
    bn, reference = nn.BatchNorm1d(3, momentum=None), nn.BatchNorm1d(3, momentum=None)
    x = torch.randn(E * 4, 3) + torch.arange(E).repeat_interleave(4).unsqueeze(1)
    ghost_batch_norm(bn, x, E)
    for part in x.chunk(E):
        reference(part)
    torch.testing.assert_close(bn.running_mean, reference.running_mean)
    torch.testing.assert_close(bn.running_var, reference.running_var)


def test_a_learner_that_does_not_batch_says_so_and_runs_the_episodes_one_by_one(batch):
    learner = build("pixel_nn")
    assert not type(learner).batched and not learner.trainable
    losses, logits = learner.episode_loss_batched(*batch, N_WAY)
    for i, episode in enumerate(zip(*batch, strict=True)):
        loss, out = learner.episode_loss(*episode, N_WAY)
        assert torch.equal(losses[i], loss) and torch.equal(logits[i], out)


def test_a_backbone_without_episodes_cannot_batch_and_says_what_to_change(batch):
    learner = build("protonet")
    learner.backbone = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 8))
    learner.episode_loss(*(part[0] for part in batch), N_WAY)  # one episode: any backbone
    with pytest.raises(ValueError, match="meta_batch 1"):
        learner.episode_loss_batched(*batch, N_WAY)


@pytest.fixture(scope="module")
def pool():
    return ClassPool(make_toy_set(n_classes=12, per_class=8, size=SIZE), range(12), rotations=True)


@pytest.mark.parametrize("ahead", [2, 32])
def test_a_stacked_meta_batch_holds_the_episodes_of_sequential_draws(pool, ahead):
    one, stacked = EpisodeSampler(pool, 4, 2, 3, seed=5, ahead=ahead), EpisodeSampler(pool, 4, 2, 3, seed=5, ahead=ahead)
    for _ in range(2):  # two batches: the second continues the stream
        batch = stacked.sample_batch(E)
        assert batch.episodes == E and batch.support_x.shape == (E, 8, 1, SIZE, SIZE) and batch.query_y.shape == (E, 12)
        for i in range(E):
            ep, mine = one.sample(), batch.episode(i)
            for field in ("support_x", "support_y", "query_x", "query_y", "support_idx", "query_idx"):
                assert torch.equal(getattr(mine, field), getattr(ep, field)), field
            assert mine.class_ids == ep.class_ids and mine.rotations == ep.rotations


def trained(method: str, pool, batched: bool, **settings) -> tuple[Trainer, list[float]]:
    config = TrainConfig(
        episodes=2, train_shape=EpisodeShape(3, 1, 2), meta_batch=E, batch_episodes="on" if batched else "off",
        optimizer="sgd", lr=0.05, val_every=0, log_every=1,
    )  # fmt: skip
    trainer = Trainer(build(method, **settings), EpisodeSampler(pool, 3, 1, 2, seed=1), config)
    losses = [float(trainer.train_step()[0]) for _ in range(2)]
    return trainer, losses


@pytest.mark.parametrize(("method", "settings"), [("protonet", {}), ("maml", {"inner_steps": 1})])
def test_trainer_steps_batched_and_one_by_one_reach_the_same_weights(pool, method, settings):
    """SGD, not Adam: Adam's first step is about lr * sign(g), which turns float noise in a near-zero gradient into a full step."""
    fast, fast_losses = trained(method, pool, True, **settings)
    slow, slow_losses = trained(method, pool, False, **settings)
    assert fast.batched and not slow.batched
    assert fast_losses == pytest.approx(slow_losses, rel=1e-4)
    for (name, mine), theirs in zip(fast.learner.state_dict().items(), slow.learner.state_dict().values(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_trainer_batches_only_where_it_can_and_is_asked_to(pool):
    def batched(method: str, **settings) -> bool:
        config = TrainConfig(episodes=1, train_shape=EpisodeShape(3, 1, 2), val_every=0, **{"meta_batch": E, **settings})
        return Trainer(build(method), EpisodeSampler(pool, 3, 1, 2, seed=1), config).batched

    assert batched("protonet", batch_episodes="on") and batched("maml", batch_episodes="on")
    assert not batched("protonet")  # auto: one pass on a GPU only, and this pool is on the CPU
    assert not batched("protonet", batch_episodes="off")
    assert not batched("pixel_nn", batch_episodes="on")  # nothing to batch for
    assert not batched("protonet", batch_episodes="on", meta_batch=1)


def test_compile_and_batching_settings_are_validated():
    assert TrainConfig().compile == "off" and TrainConfig().batch_episodes == "auto"
    with pytest.raises(ConfigError, match="compile mode 'fast'"):
        TrainConfig(compile="fast")
    with pytest.raises(ConfigError, match="unknown batch_episodes 'yes'"):
        TrainConfig(batch_episodes="yes")
