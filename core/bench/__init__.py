"""`python -m core bench`: the common few-shot pipeline and MetaScope's, side by side, in one process.

Both train the same Conv-4 ProtoNet from the same weights on the same seeded 5-way 1-shot
15-query episodes and evaluate the same test episodes; the result is one dict of plain numbers.
MetaScope's path also trains with E episodes per step in one forward pass (train_eps_batched_E),
on the same episodes, and is evaluated after them on the same test episodes.
Speeds are the best timing window, as timeit reports: on a shared machine other processes only
ever slow a window down. The median window and the load average come with them.
"""

from __future__ import annotations

import copy
import datetime
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from core.bench.backbones import backbone_speeds
from core.bench.common import CommonPipeline, TutorialProtoNet, draws_of, episode_rows, write_pngs
from core.bench.measure import count_flops, load_average, matmul_gflops, peak_rss_mb
from core.bench.projections import bench_projections
from core.bench.variants import gpu_variants
from core.config import EpisodeShape, LearnerConfig, TrainConfig
from core.data import DataError, ImageSet, load_dataset, split_classes
from core.device import describe_device, mixed_precision, resolve_device
from core.episodes import ClassPool, EpisodeSampler
from core.evaluation import evaluate
from core.learners import MetaLearner, make_learner
from core.training.trainer import Trainer

SHAPE = EpisodeShape(5, 1, 15)  # 80 images per episode
SEED = 0


@dataclass(frozen=True)
class BenchSizes:
    """How much each part of the benchmark runs."""

    window: int  # episodes per timing window; the first window of each path is warm-up
    train_windows: int  # timed windows of MetaScope's path
    common_train_windows: int  # timed windows of the common pipeline, each beside one of MetaScope's
    eval_episodes: int  # episodes of the timed evaluation (600 as in the papers)
    common_eval_episodes: int  # episodes the common pipeline evaluates; its time is scaled to eval_episodes
    check_episodes: int  # episodes on which the evaluation paths' accuracies are compared
    projection_points: int  # points for PCA, UMAP and t-SNE (5,000 in the goals)
    large_points: int  # points for the sampled projection of a large set (50,000; 0 skips it)
    matmul_seconds: float
    batched: tuple[int, ...] = (8, 32)  # episodes per step of the batched paths (train_eps_batched_E)


FULL = BenchSizes(25, 8, 8, 600, 100, 100, 5_000, 50_000, 2.0)
QUICK = BenchSizes(10, 4, 4, 600, 10, 10, 1_000, 0, 0.3)


def default_data_dir() -> Path | None:
    """$METASCOPE_OMNIGLOT, else None (the built-in glyphs)."""
    return Path(os.environ["METASCOPE_OMNIGLOT"]) if os.environ.get("METASCOPE_OMNIGLOT") else None


def bench_dataset(data_dir: str | Path | None, dataset: str | None = None, image_size: int | None = None) -> ImageSet:
    """A named dataset (`dataset` from `data_dir`, e.g. 84-px colour mini_imagenet), else 28x28 Omniglot from
    `data_dir` (or the default), else the built-in glyphs. A named dataset that is absent is a DataError saying so."""
    if dataset is not None:
        try:
            return load_dataset(dataset, data_dir, image_size)
        except DataError as exc:
            raise DataError(f"cannot bench on {dataset}: {exc}") from exc
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    return load_dataset("omniglot", folder, 28) if folder is not None else load_dataset("glyphs", None, 28)


def run_benchmark(
    quick: bool = False,
    data_dir: str | None = None,
    threads: int = 2,
    sizes: BenchSizes | None = None,
    image_set: ImageSet | None = None,
    projections: bool = True,
    dataset: str | None = None,
    image_size: int | None = None,
) -> dict[str, Any]:
    """Run the benchmark -> one flat dict of figures (see README for the keys).

    projections=False skips PCA/UMAP/t-SNE (CPU work) and reports them as None: for a GPU run.
    """
    sizes = sizes or (QUICK if quick else FULL)
    if not projections:
        sizes = replace(sizes, projection_points=0, large_points=0)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        image_set = image_set or bench_dataset(data_dir, dataset, image_size)
        figures = _run(sizes, image_set, quick)
        if dataset is not None:  # a named benchmark: what each backbone costs at its size and colour
            figures |= backbone_speeds(image_set, SHAPE, sizes.window, SEED)
        return figures
    finally:
        torch.set_num_threads(previous_threads)


def _run(sizes: BenchSizes, image_set: ImageSet, quick: bool) -> dict[str, Any]:
    device = resolve_device("auto")
    split = split_classes(image_set, SEED)
    train_pool = ClassPool(image_set, split.classes("train"), rotations=True, device=device)
    test_pool = ClassPool(image_set, split.classes("test"), rotations=False, device=device)
    learner = _seeded_protonet(image_set, device)
    common_model = TutorialProtoNet(image_set.images.shape[1]).to(device)
    common_model.load_state_dict(learner.state_dict())
    out: dict[str, Any] = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "quick": quick, "load_start": load_average()}
    out |= _flops(learner, train_pool, device, sizes)
    batched = {e: BatchedPath(learner, train_pool, e, sizes) for e in sizes.batched}  # copies of the same start
    with tempfile.TemporaryDirectory(prefix="metascope-bench-") as tmp:
        out |= _train(learner, common_model, train_pool, Path(tmp) / "train", device, sizes, list(batched.values()))
        common_model.load_state_dict(learner.state_dict())  # evaluate the same trained weights both ways
        out |= _eval(learner, common_model, test_pool, Path(tmp) / "test", device, sizes)
    for path in batched.values():
        out |= path.figures(out, test_pool, sizes)
    if device.type == "cuda":
        out |= gpu_variants(learner, train_pool, SHAPE)
    out |= bench_projections(learner, train_pool, sizes.projection_points, sizes.large_points)
    out["train_ratio"] = out["train_eps"] / out["train_eps_common"]
    out["limit_share"] = out["train_eps"] / out["flop_limit_eps"]
    out["limit_share_float32_path"] = out["train_eps_float32"] / out["flop_limit_eps_float32"]
    del out["train_episode_losses"], out["train_common_rates"]
    out |= {
        "peak_rss_mb": peak_rss_mb(),
        "device": describe_device(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "dataset": f"{image_set.name} ({image_set.images.shape[0]} images, {tuple(image_set.images.shape[1:])})",
        "episode": f"{SHAPE.n_way}w{SHAPE.k_shot}s{SHAPE.q_query}q",
        "sizes": asdict(sizes),
        "load_end": load_average(),
    }
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def _seeded_protonet(image_set: ImageSet, device: torch.device) -> MetaLearner:
    c, size = image_set.images.shape[1], image_set.images.shape[-1]
    return make_learner(LearnerConfig(method="protonet", backbone="conv4"), c, size, seed=SEED).to(device)


def _flops(learner: MetaLearner, pool: ClassPool, device: torch.device, sizes: BenchSizes) -> dict[str, Any]:
    """FLOPs of one training episode (forward + backward) and the episodes/s the matmul rate allows.

    The rate is measured in the precision training computes in ('auto': bf16 on a GPU, on large
    matrices, the device's practical peak, and on a CPU with bf16 hardware; else float32), and in float32.
    """
    probe = copy.deepcopy(learner).train()  # the real learner's gradients and BN statistics stay untouched
    ep = EpisodeSampler(pool, SHAPE.n_way, SHAPE.k_shot, SHAPE.q_query, seed=SEED + 1).sample()
    flops = count_flops(lambda: probe.episode_loss(ep.support_x, ep.support_y, ep.query_x, ep.query_y, SHAPE.n_way)[0].backward())
    dtype = mixed_precision("auto", device) or torch.float32
    n = 8192 if device.type == "cuda" else 1024
    gflops = matmul_gflops(device, sizes.matmul_seconds, n=n, dtype=dtype)
    # the float32 ceiling as well (the reference figures' unit), when training runs in bf16
    gflops32 = gflops if dtype == torch.float32 else matmul_gflops(device, sizes.matmul_seconds, n=n)
    return {
        "episode_gflop": flops / 1e9,
        "matmul_gflops": gflops,
        "matmul_dtype": str(dtype).removeprefix("torch."),
        "flop_limit_eps": gflops * 1e9 / flops,
        "matmul_gflops_float32": gflops32,
        "flop_limit_eps_float32": gflops32 * 1e9 / flops,
    }


class BatchedPath:
    """MetaScope's training with `episodes` episodes per step in one forward pass, on a copy of the same start.

    It trains on the same stream as the one-episode path, about as many episodes (whole steps, at least
    two windows), in windows of about the same number of episodes. Adam's learning rate is scaled by
    sqrt(E), the square-root rule for adaptive optimizers (Malladi et al., 2022): E times fewer steps,
    each on an E times less noisy gradient. Whether that keeps the accuracy is what the figures show.
    """

    def __init__(self, learner: MetaLearner, pool: ClassPool, episodes: int, sizes: BenchSizes):
        self.episodes = episodes
        self.steps = max(1, round(sizes.window / episodes))  # per window
        total = sizes.window * (1 + sizes.train_windows)
        self.windows_total = max(2, min(1 + sizes.train_windows, total // (episodes * self.steps)))
        config = TrainConfig(
            episodes=self.steps * self.windows_total, train_shape=SHAPE, meta_batch=episodes, batch_episodes="on", schedule="constant",
            lr=1e-3 * math.sqrt(episodes), log_every=self.steps, val_every=0, seed=SEED,
        )  # fmt: skip
        self.trainer = Trainer(copy.deepcopy(learner), EpisodeSampler(pool, SHAPE.n_way, SHAPE.k_shot, SHAPE.q_query, SEED), config)
        self.trainer.learner.train()
        self.windows: list[tuple[float, list[float], float]] = []  # (seconds, step losses, mean accuracy)

    def window(self, i: int) -> None:
        if i < self.windows_total:
            self.windows.append(_window(self.trainer, self.steps))

    def figures(self, out: dict[str, Any], test_pool: ClassPool, sizes: BenchSizes) -> dict[str, Any]:
        """Speeds (best and median timed window), their share of the compute ceiling and ratio to the common
        pipeline; mean training loss over the episodes it shares with the one-episode path; test accuracy."""
        e, tag = self.episodes, f"batched_{self.episodes}"
        rates = [e * self.steps / seconds for seconds, _, _ in self.windows[1:]]
        paired = [ours / theirs for ours, theirs in zip(rates, out["train_common_rates"], strict=False)]  # windows run side by side
        losses = [loss for _, step_losses, _ in self.windows for loss in step_losses]  # one per step: the mean of E episodes
        shared = min(len(losses), len(out["train_episode_losses"]) // e)  # whole steps within the one-episode path's episodes
        result = evaluate(self.trainer.learner, test_pool, SHAPE, sizes.eval_episodes, SEED)
        return {
            f"train_eps_{tag}": max(rates),
            f"train_eps_{tag}_median": statistics.median(rates),
            f"limit_share_{tag}": max(rates) / out["flop_limit_eps"],
            f"train_ratio_{tag}": max(rates) / out["train_eps_common"],
            f"train_ratio_{tag}_paired_median": statistics.median(paired) if paired else None,
            f"train_lr_{tag}": self.trainer.config.lr,
            f"train_episodes_{tag}": e * len(losses),
            f"train_loss_{tag}": statistics.fmean(losses[:shared]) if shared else None,
            f"train_loss_{tag}_one_episode_path": statistics.fmean(out["train_episode_losses"][: shared * e]) if shared else None,
            f"eval_acc_{tag}": result.accuracy,
            f"eval_ci95_{tag}": result.ci95,
        }


def _train(
    learner: MetaLearner,
    common_model: TutorialProtoNet,
    pool: ClassPool,
    folder: Path,
    device: torch.device,
    sizes: BenchSizes,
    batched: list[BatchedPath] = (),
) -> dict[str, Any]:
    """Train both paths from the same weights on the same episodes, one window of each in turn (and of each batched path).

    In turn, not one path after the other: this machine's speed drifts by 20% over minutes, and a
    drift between the two runs read as a difference between the pipelines (2.08x in one run, 1.59x
    in the next). The ratio of each pair of windows is robust to it. Also the mean loss on the shared episodes.
    """
    w = sizes.window
    common_draws = draws_of(pool, SHAPE.n_way, SHAPE.k_shot, SHAPE.q_query, SEED, w * (1 + sizes.common_train_windows))
    write_pngs(pool, episode_rows(pool, common_draws), folder)
    common = CommonPipeline(pool, folder, SHAPE.k_shot, device)
    optimizer = torch.optim.Adam(common_model.parameters(), lr=1e-3)
    config = TrainConfig(
        episodes=w * (1 + sizes.train_windows), train_shape=SHAPE, schedule="constant", lr=1e-3, log_every=w, val_every=0, seed=SEED
    )
    trainer = Trainer(learner, EpisodeSampler(pool, SHAPE.n_way, SHAPE.k_shot, SHAPE.q_query, SEED), config)
    # where 'auto' chose bf16, the same path in float32 too (a copy of the same start), for comparison
    fp32 = None
    if trainer.autocast_dtype is not None:
        fp32_config = replace(config, precision="fp32")
        fp32 = Trainer(copy.deepcopy(learner), EpisodeSampler(pool, SHAPE.n_way, SHAPE.k_shot, SHAPE.q_query, SEED), fp32_config)
        fp32.learner.train()
    learner.train()
    common_windows, windows, fp32_windows = [], [], []  # (seconds, [losses]) / (seconds, [step losses], mean accuracy); first: warm-up
    for i in range(1 + max(sizes.train_windows, sizes.common_train_windows, *(path.windows_total - 1 for path in batched))):
        if i <= sizes.common_train_windows:
            common_windows.append(common.train(common_model, optimizer, common_draws[i * w : (i + 1) * w]))
        if i <= sizes.train_windows:
            windows.append(_window(trainer, w))
            if fp32 is not None:
                fp32_windows.append(_window(fp32, w))
        for path in batched:
            path.window(i)
    rates = [w / seconds for seconds, _, _ in windows[1:]]
    fp32_rates = [w / seconds for seconds, _, _ in fp32_windows[1:]] or rates
    common_rates = [w / seconds for seconds, _ in common_windows[1:]]
    shared = len(common_windows)  # windows both paths trained on
    return {
        "train_eps_common": max(common_rates),
        "train_eps": max(rates),
        "train_eps_common_median": statistics.median(common_rates),
        "train_eps_median": statistics.median(rates),
        "train_eps_float32": max(fp32_rates),
        "train_ratio_paired_median": statistics.median(ours / theirs for ours, theirs in zip(rates, common_rates, strict=False)),
        "train_loss_common": statistics.fmean(loss for _, losses in common_windows for loss in losses),
        "train_loss": statistics.fmean(loss for _, losses, _ in windows[:shared] for loss in losses),
        # for the batched paths, dropped from the output: per-episode losses, the common pipeline's window rates
        "train_episode_losses": [loss for _, losses, _ in windows for loss in losses],
        "train_common_rates": common_rates,
        "train_acc_last_window": windows[-1][2],
        "train_precision": str(mixed_precision(config.precision, device) or "float32").removeprefix("torch."),
        "train_episodes_compared": len(common_draws),
    }


def _window(trainer: Trainer, steps: int) -> tuple[float, list[float], float]:
    """`steps` training steps -> (seconds, loss of each step, mean accuracy); one device sync (.tolist()), at the end."""
    start = time.perf_counter()
    losses, accuracies = zip(*(trainer.train_step() for _ in range(steps)), strict=True)
    loss_values, acc_value = torch.stack(losses).tolist(), torch.stack(accuracies).mean().item()
    return time.perf_counter() - start, loss_values, acc_value


def _eval(
    learner: MetaLearner, common_model: TutorialProtoNet, pool: ClassPool, folder: Path, device: torch.device, sizes: BenchSizes
) -> dict[str, float]:
    """600 test episodes MetaScope's way; the common way on a part of them, scaled; accuracies of all paths on the same episodes."""
    evaluate(learner, pool, SHAPE, 10, SEED)  # first-call costs are not what a user waits for on each evaluation
    fast = evaluate(learner, pool, SHAPE, sizes.eval_episodes, SEED)
    check = max(sizes.check_episodes, sizes.common_eval_episodes)
    draws = draws_of(pool, SHAPE.n_way, SHAPE.k_shot, SHAPE.q_query, SEED, check)
    write_pngs(pool, episode_rows(pool, draws), folder)
    common = CommonPipeline(pool, folder, SHAPE.k_shot, device)
    common_s, _ = common.evaluate(common_model, draws[: sizes.common_eval_episodes])
    _, common_acc = common.evaluate(common_model, draws[: sizes.check_episodes])
    per_episode = evaluate(learner, pool, SHAPE, sizes.check_episodes, SEED, per_episode=True)
    same = evaluate(learner, pool, SHAPE, sizes.check_episodes, SEED)
    return {
        "eval600_s_common": common_s * sizes.eval_episodes / sizes.common_eval_episodes,
        "eval600_s": fast.seconds,
        "eval_acc": fast.accuracy,
        "eval_ci95": fast.ci95,
        "eval_check_episodes": sizes.check_episodes,
        "eval_acc_check_fast": same.accuracy,
        "eval_acc_check_per_episode": per_episode.accuracy,
        "eval_acc_check_common": common_acc,
        "eval_per_episode_s": per_episode.seconds * sizes.eval_episodes / sizes.check_episodes,
        "eval_common_episodes_timed": sizes.common_eval_episodes,
    }
