"""torchrun's scaling on the CPU: episodes/s per process of 2 processes of 1 thread each (gloo) against 1 process of
1 thread, and what the all-reduce costs per step.

    OMP_NUM_THREADS=1 python scripts/bench_torchrun.py --steps 40 --per-rank 4

Each process takes `--per-rank` episodes of every meta-batch (so the one process trains meta-batches of 4, the two
meta-batches of 8: the same work per process and step); ProtoNet on Conv-4, 5-way 1-shot 15-query, on the built-in
glyphs ($METASCOPE_OMNIGLOT is not needed). Each configuration is timed over
`--steps` steps after `--warmup` steps. The all-reduce is timed on its own: the step's one flattened tensor
(gradients, loss, accuracy, batch-norm statistics), summed `--steps` times between two barriers. Prints one JSON
object; `kept` is the share of one process's episodes/s per process that each of the two keeps (goal: 0.9 or more).
A third configuration, two unrelated 1-thread processes at once, shows what sharing the cores, cache and memory
alone takes (`kept_by_independent_pair`), so `kept_of_independent_pair` is what torchrun and gloo themselves cost.
The configurations take turns `--repeats` times and each figure is a median. Both cores must be free for a fair
figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig  # noqa: E402
from core.experiment import preflight  # noqa: E402
from core.training.distributed import Ranks, join, leave, running_norms  # noqa: E402
from core.training.run import make_trainer  # noqa: E402


def worker(a: argparse.Namespace) -> None:
    """One process (alone, or a rank of torchrun): time its training steps and, under torchrun, the all-reduce."""
    torch.set_num_threads(1)
    peers = join()
    world = peers.world_size
    train = TrainConfig(
        dataset="glyphs", image_size=a.image_size, episodes=a.warmup + a.steps, train_shape=EpisodeShape(5, 1, 15),
        meta_batch=a.per_rank * world, val_every=0, checkpoint_every=10**6, device="cpu", seed=0,
    )  # fmt: skip
    config = RunConfig(LearnerConfig(method=a.method), train)
    trainer = make_trainer(config, preflight(config), peers=peers)
    trainer.learner.train()
    for _ in range(a.warmup):
        trainer.train_step()
    sync = dist.barrier if isinstance(peers, Ranks) else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(a.steps):
        trainer.train_step()
    sync()
    step_s = (time.perf_counter() - start) / a.steps
    result = {"rank": peers.rank, "world_size": world, "step_ms": 1000 * step_s, "episodes_per_s": a.per_rank / step_s}
    if isinstance(peers, Ranks):
        size = sum(p.numel() for p in trainer.params) + 2 + sum(2 * bn.num_features + 1 for bn in running_norms(trainer.learner))
        flat = torch.zeros(size)
        sync()
        start = time.perf_counter()
        for _ in range(a.steps):
            dist.all_reduce(flat)
        sync()
        result.update(allreduce_ms=1000 * (time.perf_counter() - start) / a.steps, allreduce_floats=size)
    leave()
    if peers.rank == 0:
        Path(a.out).write_text(json.dumps(result))


def measure(a: argparse.Namespace, processes: int, together: int = 1) -> dict[str, float]:
    """Run the worker in 1 process, or in `processes` under torchrun -> rank 0's figures. `together` > 1 starts that
    many independent copies at once (no torchrun, nothing shared) -> their mean: what the cores give two processes."""
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"result-{i}.json" for i in range(together)]
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"] if processes > 1 else []
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        args = [str(Path(__file__).resolve()), "--worker", "--steps", str(a.steps), "--warmup", str(a.warmup)]
        args += ["--per-rank", str(a.per_rank), "--image-size", str(a.image_size), "--method", a.method]
        jobs = [subprocess.Popen([sys.executable, *launcher, *args, "--out", str(out)], env=env, stdout=subprocess.DEVNULL) for out in outs]
        if any(job.wait() for job in jobs):
            raise SystemExit("a benchmark process failed (its error is above)")
        results = [json.loads(out.read_text()) for out in outs]
        return {key: sum(r[key] for r in results) / together for key in results[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--per-rank", type=int, default=4, help="episodes of each meta-batch per process")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--repeats", type=int, default=3, help="turns of the three configurations; figures are medians")
    p.add_argument("--method", default="protonet")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a)
        return
    # The three configurations take turns, `--repeats` times, and each figure is the median of its turns: on a shared
    # (virtual) machine a neighbour's burst then spoils one turn, not a whole configuration.
    turns = [(measure(a, 1), measure(a, 2), measure(a, 1, together=2)) for _ in range(a.repeats)]
    one, two, pair = ({key: statistics.median(t[i][key] for t in turns) for key in turns[0][i]} for i in range(3))
    kept_each = sorted(round(t[1]["episodes_per_s"] / t[0]["episodes_per_s"], 3) for t in turns)
    figures = {
        "method": a.method,
        "per_rank": a.per_rank,
        "steps": a.steps,
        "repeats": a.repeats,
        "one_process_episodes_per_s": round(one["episodes_per_s"], 2),
        "two_ranks_episodes_per_s_per_rank": round(two["episodes_per_s"], 2),
        "kept": round(two["episodes_per_s"] / one["episodes_per_s"], 3),
        "kept_each_turn": kept_each,
        # two unrelated 1-thread processes at once: how much the shared cores, cache and memory alone take away
        "independent_pair_episodes_per_s_each": round(pair["episodes_per_s"], 2),
        "kept_by_independent_pair": round(pair["episodes_per_s"] / one["episodes_per_s"], 3),
        "kept_of_independent_pair": round(two["episodes_per_s"] / pair["episodes_per_s"], 3),
        "step_ms": {"one": round(one["step_ms"], 2), "two": round(two["step_ms"], 2)},
        "allreduce_ms_per_step": round(two["allreduce_ms"], 3),
        "allreduce_floats": two["allreduce_floats"],
        "allreduce_share_of_step": round(two["allreduce_ms"] / two["step_ms"], 4),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
