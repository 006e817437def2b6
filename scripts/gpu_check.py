"""The checks that need a CUDA GPU, in one process: every learner trains, evaluates and round-trips
its checkpoint on the device; ProtoNet's Omniglot recipe in bf16 and in float32 (same accuracy?);
host syncs per training step, one episode and 8 episodes in one forward pass (each learner that
batches); then `python -m core bench` without the (CPU) projections.

    python scripts/gpu_check.py --data-dir ../shared/data/omniglot --out gpu_check.json

Each part writes its figures to --out as soon as it has them, so a run cut short keeps what it
measured; a part that fails records its error and the rest go on.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.bench import run_benchmark  # noqa: E402
from core.bench.variants import syncs_per_step  # noqa: E402
from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig  # noqa: E402
from core.device import describe_device  # noqa: E402
from core.evaluation import evaluate  # noqa: E402
from core.experiment import Experiment, load_learner  # noqa: E402
from core.store import RunStore  # noqa: E402
from core.training.run import train_run  # noqa: E402

FIVE_ONE = EpisodeShape(5, 1, 15)
# per learner: (learner settings, training settings) of the README's recipes, shortened to a smoke run
MAML_LIKE = {"train_shape": FIVE_ONE, "meta_batch": 4, "lr": 0.002}
SMOKE: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "pixel_nn": ({}, {"episodes": 1}),
    "protonet": ({}, {"train_shape": EpisodeShape(30, 1, 5), "lr": 0.002}),
    "matching": ({}, {"train_shape": EpisodeShape(20, 1, 5)}),
    "relation": ({}, {"train_shape": EpisodeShape(20, 1, 5)}),
    "siamese": ({}, {"train_shape": EpisodeShape(20, 1, 5)}),
    "triplet": ({"margin": 0.5}, {"train_shape": EpisodeShape(20, 1, 5)}),
    "maml": ({}, MAML_LIKE),
    "fomaml": ({}, MAML_LIKE),
    "anil": ({}, MAML_LIKE),
    "reptile": ({"inner_lr": 0.1}, {**MAML_LIKE, "train_shape": EpisodeShape(5, 5, 5)}),
    "learned_optimizer": ({}, MAML_LIKE),
    "finetune": ({}, MAML_LIKE),
    "blackbox": ({}, {"train_shape": FIVE_ONE, "lr": 0.001}),
}


DEVICE = "cuda"


def sync() -> None:
    if torch.device(DEVICE).type == "cuda":
        torch.cuda.synchronize()


class Report:
    """A dict written to `path` after every part."""

    def __init__(self, path: Path):
        self.path, self.data = path, {}

    def part(self, name: str, fn: Callable[[], Any]) -> None:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            self.data[name] = fn()
        except Exception as exc:  # noqa: BLE001 - record and go on: device time is scarce
            self.data[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
        self.data.setdefault("seconds", {})[name] = round(time.perf_counter() - start, 2)
        self.path.write_text(json.dumps(self.data, indent=2, default=str))
        print(json.dumps(self.data[name], default=str)[:1500], flush=True)


def environment() -> dict[str, Any]:
    device = torch.device("cuda")
    if not torch.cuda.is_available():
        return {"device": describe_device("cpu"), "torch": torch.__version__}
    return {
        "device": describe_device(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "bf16": torch.cuda.is_bf16_supported(),
        "python": platform.python_version(),
        "memory_gib": round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1),
    }


def run_config(data_dir: str, method: str, episodes: int, precision: str = "auto", learner: dict | None = None, **train: Any) -> RunConfig:
    settings = {"dataset": "omniglot", "data_dir": data_dir, "episodes": episodes, "val_every": 0, "seed": 0, "device": DEVICE}
    return RunConfig(LearnerConfig(method=method, **(learner or {})), TrainConfig(**{**settings, **train, "precision": precision}))


def train_and_eval(
    config: RunConfig, runs: Path, shapes: tuple[EpisodeShape, ...] = (FIVE_ONE,), episodes: int = 600, experiment: Experiment | None = None
) -> dict[str, Any]:
    """Train into a new run folder, load the last checkpoint back on the GPU, evaluate."""
    experiment = experiment or Experiment.from_config(config.train)
    run = RunStore(runs).create(config)
    sync()
    start = time.perf_counter()
    status = train_run(config, run, experiment=experiment)
    sync()
    train_s = time.perf_counter() - start
    learner, _, checkpoint = load_learner(run.path, device=DEVICE)
    out: dict[str, Any] = {"status": status, "train_s": round(train_s, 2), "eps": round(config.train.episodes / train_s, 1)}
    out["checkpoint_step"] = checkpoint.step
    out["device_of_weights"] = str(next(iter(learner.parameters()), torch.empty(0, device=DEVICE)).device)
    for shape in shapes:
        result = evaluate(learner, experiment.pool("test"), shape, episodes, seed=0)
        out[f"acc_{shape.n_way}w{shape.k_shot}s"] = f"{100 * result.accuracy:.2f} ± {100 * result.ci95:.2f}"
        out[f"eval_s_{shape.n_way}w{shape.k_shot}s"] = round(result.seconds, 3)
    return out


def every_learner(data_dir: str, runs: Path, episodes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method, (learner, train) in SMOKE.items():
        train = dict(train)
        try:
            config = run_config(data_dir, method, train.pop("episodes", episodes), learner=learner, **train)
            experiment = Experiment.from_config(config.train)
            out[method] = train_and_eval(config, runs, episodes=100, experiment=experiment)
            model = experiment.new_learner(config.learner)
            if model.trainable:
                pool = experiment.pool("train", config.train.rotations)
                out[method]["syncs_per_step"] = syncs_per_step(model, pool, config.train.train_shape, "auto", steps=5)
                if model.batched:  # the stacked meta-batch through one forward pass
                    batched = syncs_per_step(model, pool, config.train.train_shape, "auto", steps=5, meta_batch=8)
                    out[method]["syncs_per_step_batched_8"] = batched
        except Exception as exc:  # noqa: BLE001 - one learner's failure must not hide the others'
            out[method] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-1500:]}
        print(method, out[method], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the Omniglot minimal background zips")
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--smoke-episodes", type=int, default=30)
    parser.add_argument("--recipe-episodes", type=int, default=1500, help="ProtoNet's training episodes (1500 as in the README)")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, tiny sizes: checks this script before device time is spent")
    a = parser.parse_args()
    global DEVICE
    DEVICE = "cpu" if a.dry_run else "cuda"
    if not a.dry_run and not torch.cuda.is_available():
        sys.exit("no CUDA device: this script checks the GPU path (--dry-run runs it on the CPU)")
    report = Report(Path(a.out))
    report.part("environment", environment)
    with tempfile.TemporaryDirectory(prefix="metascope-gpu-") as tmp:
        runs = Path(tmp)
        recipe = {"train_shape": EpisodeShape(30, 1, 5), "lr": 0.002}
        both = (FIVE_ONE, EpisodeShape(5, 5, 15))
        for precision in ("bf16", "fp32"):
            config = run_config(a.data_dir, "protonet", a.recipe_episodes, precision, **recipe)
            report.part(f"protonet_{precision}", lambda c=config: train_and_eval(c, runs, both))
        report.part("every_learner", lambda: every_learner(a.data_dir, runs, a.smoke_episodes))
    report.part("bench", lambda: run_benchmark(quick=a.dry_run, data_dir=a.data_dir, projections=False))


if __name__ == "__main__":
    main()
