"""The benchmark's figures and the fast paths it measures: same answers as the slow ones, every key present."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from core.bench import BenchSizes, run_benchmark
from core.bench.common import TutorialProtoNet
from core.bench.measure import count_flops
from core.bench.projections import bench_projections
from core.bench.variants import Variant, gpu_variants, syncs_per_step, variant_speed
from core.config import EpisodeShape, LearnerConfig
from core.episodes import ClassPool, EpisodeSampler
from core.evaluation import evaluate, score_by_index
from core.learners import make_learner
from core.learners.protonet import ProtoNet
from tests.conftest import make_toy_set

TINY = BenchSizes(window=4, train_windows=2, common_train_windows=1, eval_episodes=40, common_eval_episodes=8, check_episodes=8,
                  projection_points=60, large_points=300, matmul_seconds=0.05, batched=(2,))  # fmt: skip
REQUIRED = ("train_eps_common", "train_eps", "train_ratio", "flop_limit_eps", "limit_share", "eval600_s_common", "eval600_s",
            "pca5k_s", "umap5k_s", "tsne5k_s", "peak_rss_mb")  # fmt: skip


@pytest.fixture(scope="module")
def toy28():
    return make_toy_set(n_classes=30, per_class=16, size=28)


def seeded(method: str = "protonet", seed: int = 0, **config):
    torch.manual_seed(seed)
    return make_learner(LearnerConfig(method=method, **config), 1, 28)


def test_benchmark_reports_every_figure_and_the_paths_agree(toy28) -> None:
    threads_before = torch.get_num_threads()
    out = run_benchmark(sizes=TINY, image_set=toy28, threads=1)
    for key in REQUIRED:
        assert isinstance(out[key], float) and out[key] > 0, key
    assert isinstance(out["device"], str) and out["device"].startswith("CPU")
    assert out["threads"] == 1 and torch.get_num_threads() == threads_before  # restored afterwards
    assert out["train_ratio"] == pytest.approx(out["train_eps"] / out["train_eps_common"], rel=1e-3)
    assert out["train_ratio_paired_median"] > 0 and out["train_eps_float32"] > 0  # window by window, beside each other
    assert 4.0 < out["episode_gflop"] < 5.0  # Conv-4 on 80 images of 28x28, forward and backward
    # the same episodes from the same weights: the two pipelines learn alike
    assert out["train_loss"] == pytest.approx(out["train_loss_common"], rel=0.1)  # Adam turns float noise into different steps
    # the same trained weights on the same test episodes: the same accuracy on every path
    assert out["eval_acc_check_fast"] == out["eval_acc_check_per_episode"]
    assert out["eval_acc_check_common"] == pytest.approx(out["eval_acc_check_fast"], abs=0.01)
    assert isinstance(out["pca50k_s"], float) and isinstance(out["umap50k_s"], float)
    # 2 episodes per step in one pass: the same 12 episodes, 6 steps; speed, its share of the ceiling, accuracy after them
    assert out["train_episodes_batched_2"] == 12 and out["train_eps_batched_2"] > 0
    assert out["limit_share_batched_2"] == pytest.approx(out["train_eps_batched_2"] / out["flop_limit_eps"], rel=1e-3)
    # the mean loss over the same 12 episodes, each path's: reported, not compared (6 steps against 12 say little)
    assert out["train_loss_batched_2"] > 0 and out["train_loss_batched_2_one_episode_path"] > 0
    assert 0.2 < out["eval_acc_batched_2"] <= 1 and out["eval_ci95_batched_2"] > 0  # above chance (5-way) after 12 episodes
    assert "train_episode_losses" not in out and "train_common_rates" not in out
    json.dumps(out)  # plain data only


@pytest.mark.parametrize("method", ["protonet", "matching", "relation", "pixel_nn"])
def test_fast_evaluation_equals_episode_by_episode(toy28, method: str) -> None:
    pool = ClassPool(toy28, range(10))
    learner = seeded(method)
    fast = evaluate(learner, pool, EpisodeShape(5, 1, 15), 30, seed=3)
    slow = evaluate(learner, pool, EpisodeShape(5, 1, 15), 30, seed=3, per_episode=True)
    assert fast.episode_accuracy == pytest.approx(slow.episode_accuracy, abs=1e-6)
    assert fast.confusion == slow.confusion


class ItemScoring(ProtoNet):
    """A score with a host read inside, which vmap cannot batch."""

    def score(self, support_z, support_y, query_z, n_way):
        return super().score(support_z, support_y, query_z, n_way) * (1.0 + 0.0 * float(query_z.sum().item()))


def test_score_by_index_falls_back_to_one_episode_at_a_time(toy28) -> None:
    pool = ClassPool(toy28, range(10))
    shape = EpisodeShape(5, 2, 3)
    sampler = EpisodeSampler(pool, 5, 2, 3, seed=0)
    rows = torch.stack([pool.rows(*sampler.draw()) for _ in range(6)])
    z = torch.randn(pool.images.shape[0], 8)
    plain = score_by_index(seeded(), z, rows, shape)
    fallback = score_by_index(ItemScoring(LearnerConfig(), 1, 28), z, rows, shape)
    assert plain.shape == (6, 15, 5)
    torch.testing.assert_close(fallback, plain)


def loss_and_grads(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ProtoNet loss on one 5-way 1-shot 15-query episode and the flattened gradient."""
    y = torch.arange(5).repeat_interleave(15)
    loss = F.cross_entropy(model(x[:5], torch.arange(5), x[5:], 5), y)
    loss.backward()
    return loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])


def test_conv4_computes_what_the_textbook_layer_order_computes(toy28) -> None:
    """Pooling before the ReLU and channels-last storage change the speed, not the function or its gradient."""
    x = toy28.images[:80].double() / 255
    ours, reference = seeded().double(), TutorialProtoNet(1).double()
    reference.load_state_dict(ours.state_dict())
    (loss, grad), (ref_loss, ref_grad) = loss_and_grads(ours, x), loss_and_grads(reference, x)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)  # in float64 the orders agree exactly
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-9)
    # in float32 channels-last kernels sum in another order: the gradient stays within 0.1% of the exact one
    loss32, grad32 = loss_and_grads(seeded(), x.float())
    assert abs(loss32.item() - loss.item()) < 1e-4
    assert (grad32.double() - grad).norm() / grad.norm() < 1e-3


def test_flop_count_of_a_linear_layer() -> None:
    layer = torch.nn.Linear(64, 32)
    flops = count_flops(lambda: layer(torch.randn(10, 64)).sum().backward())
    assert flops == 2 * (2 * 10 * 64 * 32)  # forward, then the weight's gradient (the input needs none)


@pytest.mark.slow
def test_quick_benchmark_from_the_command_line(tmp_path) -> None:
    env = {**os.environ, "METASCOPE_CACHE": os.environ.get("METASCOPE_CACHE", str(tmp_path))}
    done = subprocess.run([sys.executable, "-m", "core", "bench", "--quick"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert all(isinstance(out[k], float) for k in REQUIRED) and out["quick"] is True
    assert out["eval_acc_check_fast"] == out["eval_acc_check_per_episode"]


def test_training_variants_report_speeds_and_leave_the_learner_alone(toy28) -> None:
    pool = ClassPool(toy28, range(20))
    learner = seeded()
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    shape = EpisodeShape(5, 1, 5)
    figures = variant_speed(learner, pool, shape, Variant("bf16_meta_batch2", precision="bf16", meta_batch=2), steps=3, windows=2)
    assert figures["eps"] > 0 and figures["wall_s"] > 0 and figures["loss_last_window"] > 0
    assert all(torch.equal(v, learner.state_dict()[k]) for k, v in before.items())  # a copy was trained
    assert syncs_per_step(learner, pool, shape, "bf16") is None  # counted on a GPU only


def test_projections_can_be_skipped(toy28) -> None:
    out = bench_projections(seeded(), ClassPool(toy28, range(5)), n=0, large=0)
    assert out["umap5k_s"] is None and out["tsne5k_s"] is None and out["pca50k_s"] is None


def test_gpu_variants_measure_on_the_cpu_too(toy28, monkeypatch) -> None:
    """The GPU-only part of the bench runs anywhere (compile left out: it needs minutes on a CPU)."""
    monkeypatch.setattr("core.bench.variants.GPU_VARIANTS", (Variant("fp32"), Variant("bad", precision="fp8")))
    out = gpu_variants(seeded(), ClassPool(toy28, range(20)), EpisodeShape(5, 1, 5), steps=8, meta_batch=2)
    assert out["syncs_per_step"] is None and out["syncs_per_step_batched_2"] is None and out["train_eps_fp32"] > 0
    assert out["profile_bf16_batched_2"]["step_ms"] > 0
    assert out["profile_fp32"]["step_ms"] > 0 and out["profile_fp32"]["kernels_per_step"] == 0  # no GPU kernels here
    assert out["train_eps_bad"] is None and "unknown precision 'fp8'" in out["error_bad"]  # a failed variant says why
