"""Training speed of one learner under several settings (precision, meta-batch, compilation).

On a GPU a Conv-4 episode of 80 small images is far too little work to fill the device: the
step time is kernel launches and Python. These variants show how far each remedy goes (E episodes
in one forward pass; torch.compile, with CUDA graphs in "reduce-overhead" mode), and
`syncs_per_step` shows that a step never waits for the host (CUDA's sync debug mode counts it).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.bench.measure import sync
from core.config import EpisodeShape, TrainConfig
from core.episodes import ClassPool, EpisodeSampler
from core.learners import MetaLearner
from core.training.trainer import Callback, Record, Trainer


@dataclass(frozen=True)
class Variant:
    """One way to train: autocast precision, episodes per optimizer step (one forward pass where the
    learner batches), TrainConfig.compile mode."""

    name: str
    precision: str = "fp32"
    meta_batch: int = 1
    compile: str = "off"


GPU_VARIANTS = (
    Variant("fp32"),
    Variant("bf16", precision="bf16"),
    Variant("fp32_batched32", meta_batch=32),
    Variant("bf16_batched32", precision="bf16", meta_batch=32),
    Variant("bf16_compiled", precision="bf16", compile="default"),
    Variant("bf16_batched32_cuda_graphs", precision="bf16", meta_batch=32, compile="reduce-overhead"),
    Variant("fp32_batched32_cuda_graphs", meta_batch=32, compile="reduce-overhead"),
)


class Windows(Callback):
    """Collects the Trainer's records: one per timing window."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def on_log(self, trainer: Trainer, record: Record) -> None:
        self.records.append(record)


def train_windows(learner: MetaLearner, sampler: EpisodeSampler, config: TrainConfig) -> list[Record]:
    """Train `learner` as `config` says; one record per `config.log_every` steps."""
    windows = Windows()
    Trainer(learner, sampler, config, [windows]).fit()
    return windows.records


def variant_speed(
    learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, variant: Variant, steps: int, windows: int = 3, seed: int = 0
) -> dict[str, float]:
    """Best episodes/s over `windows` timed windows of `steps` optimizer steps (after one warm-up window).

    Trains a copy: `learner` is left as it was.
    """
    model = copy.deepcopy(learner)
    config = TrainConfig(
        episodes=steps * (1 + windows), train_shape=shape, meta_batch=variant.meta_batch, batch_episodes="on", schedule="constant",
        log_every=steps, val_every=0, seed=seed, precision=variant.precision, compile=variant.compile,
    )  # fmt: skip
    start = time.perf_counter()
    records = train_windows(model, EpisodeSampler(pool, shape.n_way, shape.k_shot, shape.q_query, seed), config)
    return {
        "eps": max(r["episodes_per_s"] for r in records[1:]),
        "loss_last_window": records[-1]["loss"],
        "wall_s": time.perf_counter() - start,
    }


def stepping_trainer(learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, precision: str, seed: int, meta_batch: int = 1) -> Trainer:
    """A Trainer of a copy of `learner`, driven step by step through train_step() (no schedule, no records)."""
    config = TrainConfig(
        episodes=1, train_shape=shape, meta_batch=meta_batch, batch_episodes="on", schedule="constant", val_every=0, precision=precision
    )
    return Trainer(copy.deepcopy(learner), EpisodeSampler(pool, shape.n_way, shape.k_shot, shape.q_query, seed), config)


def syncs_per_step(
    learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, precision: str, steps: int = 20, meta_batch: int = 1
) -> float | None:
    """Host syncs per training step of `meta_batch` episodes (batched where the learner batches), as
    CUDA's sync debug mode reports them (None off a GPU)."""
    if pool.device.type != "cuda":
        return None
    trainer = stepping_trainer(learner, pool, shape, precision, seed=1, meta_batch=meta_batch)
    trainer.train_step()  # first-call set-up (cuDNN plans, allocations) is not a per-step cost
    torch.cuda.synchronize(pool.device)
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(steps):
                trainer.train_step()
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    return sum("synchroniz" in str(w.message) for w in caught) / steps


def step_profile(
    learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, precision: str, steps: int = 30, meta_batch: int = 1, warmup: int = 5
) -> dict[str, float]:
    """Per training step (of `meta_batch` episodes): wall time, time the GPU spends in kernels, and kernel launches (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    trainer = stepping_trainer(learner, pool, shape, precision, seed=2, meta_batch=meta_batch)
    for _ in range(warmup):
        trainer.train_step()
    sync(pool.device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        sync(pool.device)
        wall = time.perf_counter() - start
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy_us = sum(e.device_time for e in kernels)
    return {
        "step_ms": 1000 * wall / steps,  # with the profiler's own overhead
        "gpu_busy_ms": busy_us / 1000 / steps,
        "gpu_busy_share": busy_us / 1e6 / wall,
        "kernels_per_step": len(kernels) / steps,
    }


def gpu_variants(learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, steps: int = 100, meta_batch: int = 32) -> dict[str, object]:
    """Speeds of GPU_VARIANTS (about `steps` episodes a window), the syncs per step and step profiles, one
    episode and `meta_batch` episodes in one pass; a variant that fails reports its error, not a figure."""
    out: dict[str, object] = {}
    measures: dict[str, Callable[[], object]] = {
        "syncs_per_step": lambda: syncs_per_step(learner, pool, shape, "bf16"),
        f"syncs_per_step_batched_{meta_batch}": lambda: syncs_per_step(learner, pool, shape, "bf16", steps=10, meta_batch=meta_batch),
        "profile_fp32": lambda: step_profile(learner, pool, shape, "fp32"),
        "profile_bf16": lambda: step_profile(learner, pool, shape, "bf16"),
        f"profile_bf16_batched_{meta_batch}": lambda: step_profile(learner, pool, shape, "bf16", steps=5, meta_batch=meta_batch, warmup=2),
    }
    for name, measure in measures.items():
        try:
            out[name] = measure()
        except Exception as exc:  # noqa: BLE001 - as below
            out[name] = _error(exc)
    for variant in GPU_VARIANTS:
        try:
            figures = variant_speed(learner, pool, shape, variant, max(2, steps // variant.meta_batch))
            out |= {f"train_eps_{variant.name}": figures["eps"], f"train_wall_s_{variant.name}": figures["wall_s"]}
        except Exception as exc:  # noqa: BLE001 - one failed variant must not lose the others' figures
            out |= {f"train_eps_{variant.name}": None, f"error_{variant.name}": _error(exc)}
    return out


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
