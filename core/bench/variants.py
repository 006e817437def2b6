"""Training speed of one learner under several settings (precision, meta-batch, compilation).

On a GPU a Conv-4 episode of 80 small images is far too little work to fill the device: the
step time is kernel launches and Python. These variants show how far each remedy goes, and
`syncs_per_step` shows that a step never waits for the host (CUDA's sync debug mode counts it).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.bench.measure import sync
from core.config import EpisodeShape, TrainConfig
from core.device import mixed_precision
from core.episodes import ClassPool, EpisodeSampler
from core.learners import MetaLearner
from core.training.trainer import Callback, Record, Trainer


@dataclass(frozen=True)
class Variant:
    """One way to train: autocast precision, episodes per optimizer step, torch.compile of the backbone."""

    name: str
    precision: str = "fp32"
    meta_batch: int = 1
    compile: bool = False


GPU_VARIANTS = (
    Variant("fp32"),
    Variant("bf16", precision="bf16"),
    Variant("bf16_meta_batch8", precision="bf16", meta_batch=8),
    Variant("bf16_compiled", precision="bf16", compile=True),
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
    if variant.compile:
        model.backbone = torch.compile(model.backbone)  # the layers; scoring stays eager
    config = TrainConfig(
        episodes=steps * (1 + windows), train_shape=shape, meta_batch=variant.meta_batch, schedule="constant",
        log_every=steps, val_every=0, seed=seed, precision=variant.precision,
    )  # fmt: skip
    start = time.perf_counter()
    records = train_windows(model, EpisodeSampler(pool, shape.n_way, shape.k_shot, shape.q_query, seed), config)
    return {
        "eps": max(r["episodes_per_s"] for r in records[1:]),
        "loss_last_window": records[-1]["loss"],
        "wall_s": time.perf_counter() - start,
    }


def stepping_trainer(learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, precision: str, seed: int) -> Trainer:
    """A Trainer of a copy of `learner`, driven step by step through train_step() (no schedule, no records)."""
    config = TrainConfig(episodes=1, train_shape=shape, schedule="constant", val_every=0, precision=precision)
    return Trainer(copy.deepcopy(learner), EpisodeSampler(pool, shape.n_way, shape.k_shot, shape.q_query, seed), config)


def syncs_per_step(learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, precision: str, steps: int = 20) -> float | None:
    """Host syncs per training step, as CUDA's sync debug mode reports them (None off a GPU)."""
    if pool.device.type != "cuda":
        return None
    trainer = stepping_trainer(learner, pool, shape, precision, seed=1)
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


def one_forward_speed(
    learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, episodes: int, steps: int, precision: str = "bf16", seed: int = 0
) -> float:
    """Episodes/s when `episodes` episodes share one backbone call per optimizer step (scores vmapped).

    Not how the Trainer trains: batch-norm statistics then span the episodes. It measures how much
    of a GPU step is per-call overhead: the same images in fewer, larger kernels.
    """
    model = copy.deepcopy(learner).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = EpisodeSampler(pool, shape.n_way, shape.k_shot, shape.q_query, seed)
    dtype = mixed_precision(precision, pool.device)
    s = shape.n_way * shape.k_shot
    score = torch.vmap(model.score, in_dims=(0, None, 0, None))

    def step() -> None:
        batch = [sampler.sample() for _ in range(episodes)]
        x = torch.cat([torch.cat([e.support_x, e.query_x]) for e in batch])
        with torch.autocast(pool.device.type, dtype=dtype, enabled=dtype is not None):
            z = model.embed(x)
        z = z.float().view(episodes, -1, z.shape[-1])
        logits = score(z[:, :s], batch[0].support_y, z[:, s:], shape.n_way)  # (episodes, q, n_way)
        loss = F.cross_entropy(logits.flatten(0, 1), batch[0].query_y.repeat(episodes))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    best = 0.0
    for window in range(4):  # the first is warm-up
        sync(pool.device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync(pool.device)
        if window:
            best = max(best, steps * episodes / (time.perf_counter() - start))
    return best


def step_profile(learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, precision: str, steps: int = 30) -> dict[str, float]:
    """Per training step: wall time, time the GPU spends in kernels, and kernel launches (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    trainer = stepping_trainer(learner, pool, shape, precision, seed=2)
    for _ in range(5):
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


def gpu_variants(learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, steps: int = 100) -> dict[str, object]:
    """Speeds of GPU_VARIANTS and the syncs per step; a variant that fails reports its error, not a figure."""
    out: dict[str, object] = {"syncs_per_step": syncs_per_step(learner, pool, shape, "bf16")}
    measures: dict[str, Callable[[], object]] = {
        "profile_fp32": lambda: step_profile(learner, pool, shape, "fp32"),
        "profile_bf16": lambda: step_profile(learner, pool, shape, "bf16"),
        "train_eps_one_forward_8": lambda: one_forward_speed(learner, pool, shape, 8, steps // 4),
        "train_eps_one_forward_32": lambda: one_forward_speed(learner, pool, shape, 32, steps // 8),
    }
    for name, measure in measures.items():
        try:
            out[name] = measure()
        except Exception as exc:  # noqa: BLE001 - as below
            out[name] = _error(exc)
    for variant in GPU_VARIANTS:
        try:
            figures = variant_speed(learner, pool, shape, variant, steps)
            out |= {f"train_eps_{variant.name}": figures["eps"], f"train_wall_s_{variant.name}": figures["wall_s"]}
        except Exception as exc:  # noqa: BLE001 - one failed variant must not lose the others' figures
            out |= {f"train_eps_{variant.name}": None, f"error_{variant.name}": _error(exc)}
    return out


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
