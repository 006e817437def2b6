"""One pass per meta-batch against one episode at a time: training episodes/s of each learner, side by side.

    python scripts/bench_batching.py --methods protonet fomaml anil --meta-batch 8 --threads 1

Both Trainers start from the same weights on the same seeded 5-way 1-shot 15-query Omniglot episodes
($METASCOPE_OMNIGLOT, else the built-in glyphs) and alternate windows of about 16 episodes, so that a
machine's drift hits both alike; prints one JSON object: best and median episodes/s of each, and the
median of the paired ratios (batched / one by one). This is what TrainConfig.batch_episodes='auto' rests on.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.bench import SEED, SHAPE, bench_dataset  # noqa: E402
from core.config import LearnerConfig, TrainConfig  # noqa: E402
from core.data import split_classes  # noqa: E402
from core.device import resolve_device  # noqa: E402
from core.episodes import ClassPool, EpisodeSampler  # noqa: E402
from core.learners import make_learner  # noqa: E402
from core.training.trainer import Trainer  # noqa: E402


def compare(method: str, pool: ClassPool, meta_batch: int, rounds: int, precision: str) -> dict[str, float]:
    """Paired windows of the two paths of one learner -> its figures."""
    torch.manual_seed(SEED)
    learner = make_learner(LearnerConfig(method=method), pool.images.shape[1], pool.images.shape[-1]).to(pool.device)
    trainers = {}
    for mode in ("off", "on"):
        config = TrainConfig(
            episodes=10**9, train_shape=SHAPE, meta_batch=meta_batch, batch_episodes=mode, schedule="constant", val_every=0,
            precision=precision,
        )  # fmt: skip
        sampler = EpisodeSampler(pool, SHAPE.n_way, SHAPE.k_shot, SHAPE.q_query, SEED)
        trainers[mode] = Trainer(copy.deepcopy(learner).train(), sampler, config)
    steps = max(1, round(16 / meta_batch))
    rates: dict[str, list[float]] = {mode: [] for mode in trainers}
    for i in range(1 + rounds):  # the first round is warm-up
        for mode, trainer in trainers.items():
            start = time.perf_counter()
            losses = [trainer.train_step()[0] for _ in range(steps)]
            torch.stack(losses).sum().item()  # the one sync: a GPU's queued work counts
            if i:
                rates[mode].append(steps * meta_batch / (time.perf_counter() - start))
    return {
        "one_by_one_eps": max(rates["off"]),
        "one_by_one_eps_median": statistics.median(rates["off"]),
        "batched_eps": max(rates["on"]),
        "batched_eps_median": statistics.median(rates["on"]),
        "paired_ratio_median": statistics.median(b / a for a, b in zip(rates["off"], rates["on"], strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["protonet", "fomaml", "anil"])
    parser.add_argument("--meta-batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=8, help="timed windows of each path")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="auto")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    image_set = bench_dataset(None)
    pool = ClassPool(image_set, split_classes(image_set, SEED).classes("train"), rotations=True, device=resolve_device(a.device))
    out = {"meta_batch": a.meta_batch, "threads": a.threads, "precision": a.precision, "dataset": image_set.name}
    for method in a.methods:
        out[method] = {k: round(v, 3) for k, v in compare(method, pool, a.meta_batch, a.rounds, a.precision).items()}
        print(method, out[method], file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
