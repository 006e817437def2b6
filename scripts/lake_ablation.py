"""What each lever gives on Lake's one-shot protocol: train one variant, measure it, append it to a JSON file.

    python scripts/lake_ablation.py --data-dir ../shared/data/omniglot --variant base --variant aug-affine
    python scripts/lake_ablation.py --list

Each variant is a set of flat config values over a short base budget (ProtoNet, Conv-4, 28 px, 20-way 1-shot
5-query, 600 episodes), trained on the 5 training alphabets of the minimal split. Choices are read off the
validation alphabet (Tagalog: 17 characters, so 17-way Lake episodes); the test alphabets' 20-way Lake error
and the 5-way 1-shot accuracy are recorded beside it. Evaluation-time options (core.lake.LakeOptions) are
measured on every trained variant. One experiment at a time, one thread by default: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import EpisodeShape, RunConfig  # noqa: E402
from core.evaluation import evaluate  # noqa: E402
from core.experiment import Experiment, load_learner  # noqa: E402
from core.lake import ALIGNED, LAKE_PRESETS, LakeOptions, evaluate_lake  # noqa: E402
from core.store import RunStore  # noqa: E402
from core.training.run import train_run  # noqa: E402

BASE = {
    "method": "protonet", "dataset": "omniglot", "image_size": 28, "n_way": 20, "k_shot": 1, "q_query": 5,
    "episodes": 600, "lr": 0.002, "seed": 0, "val_every": 0, "checkpoint_every": 10_000,
}  # fmt: skip
AFFINE = {"aug_rotation": 10.0, "aug_shear": 10.0, "aug_scale": 0.1, "aug_translate": 0.05}
STRONG = {"aug_rotation": 15.0, "aug_shear": 15.0, "aug_scale": 0.15, "aug_translate": 0.08, "aug_elastic": 0.04, "aug_thickness": 0.4}
VARIANTS: dict[str, dict] = {
    "base": {},
    "readme-recipe": {"n_way": 30, "episodes": 1500},
    "aug-affine": AFFINE,
    "aug-elastic": {"aug_elastic": 0.03},
    "aug-affine-elastic": {**AFFINE, "aug_elastic": 0.03},
    "aug-thickness": {"aug_thickness": 0.5},
    "within-alphabet": {"within_alphabet": 0.5},
    "split-drawers": {"split_drawers": True},
    "size-56": {"image_size": 56},
    "global-pool": {"backbone": "conv4-global"},
    "global-pool-56": {"backbone": "conv4-global", "image_size": 56},
    "global-pool-cosine": {"backbone": "conv4-global", "distance": "cosine"},
    "global-pool-60-way": {"backbone": "conv4-global", "n_way": 60},
    "resnet12": {"backbone": "resnet12"},
    # a short version of the recipe (15 minutes of 2 quiet threads train about 6,500 such episodes), a learning curve every 500
    "long": {"backbone": "conv4-global", "n_way": 30, "episodes": 2000, "checkpoint_every": 500},
    "long-aug": {"backbone": "conv4-global", "n_way": 30, "episodes": 2000, "checkpoint_every": 500, **AFFINE, "aug_elastic": 0.03},
    "long-aug-strong": {"backbone": "conv4-global", "n_way": 30, "episodes": 2000, "checkpoint_every": 500, **STRONG},
    "no-rotations": {"rotations": False},
}
EVAL_OPTIONS = {
    "plain": LakeOptions(),
    "center": LakeOptions(center=True),
    "refine-3": LakeOptions(refine=3),
    "center-refine-3": LakeOptions(center=True, refine=3),
    "tta-8": LakeOptions(tta=8),
    "tta-16": LakeOptions(tta=16),
    "balance": LakeOptions(balance=True),
    "center-refine-3-balance": LakeOptions(center=True, refine=3, balance=True),
    "tta-16-balance": LakeOptions(tta=16, balance=True),
    "tta-32x1.5-align": ALIGNED,
    "tta-32x1.5-align-balance": LAKE_PRESETS["copies, aligned, balanced"],
}


def measure(name: str, values: dict, runs_dir: Path) -> dict:
    """Train one variant, then its Lake errors (val 17-way, test 20-way, per eval option) and 5w1s accuracy."""
    config = RunConfig.from_flat(values)
    experiment = Experiment.from_config(config.train)
    run = RunStore(runs_dir).create(config)
    start = time.perf_counter()
    train_run(config, run, experiment=experiment)
    train_s = time.perf_counter() - start
    learner, _, _ = load_learner(run)
    split, data = experiment.split, experiment.image_set
    row: dict = {"values": values, "train_s": round(train_s, 1), "run": str(run.path), "lake": {}}
    for option_name, options in EVAL_OPTIONS.items():
        val = evaluate_lake(learner, data, split.val, 1000, seed=0, n_way=17, options=options)
        test = evaluate_lake(learner, data, split.test, 1000, seed=0, options=options)
        row["lake"][option_name] = {"val_error": val.error, "val_ci": val.ci95, "test_error": test.error, "test_ci": test.ci95}
        print(f"{name:>22} {option_name:>16}: val {val.summary()}  test {test.summary()}", flush=True)
    row["curve"] = [_checkpoint_errors(run, checkpoint.step, experiment) for checkpoint in run.checkpoints()[:-1]]
    five = evaluate(learner, experiment.pool("test"), EpisodeShape(5, 1, 15), 600, seed=0)
    row["acc_5w1s"], row["ci_5w1s"] = 100 * five.accuracy, 100 * five.ci95
    print(f"{name:>22} 5w1s {row['acc_5w1s']:.2f} ± {row['ci_5w1s']:.2f}, trained in {train_s:.0f} s", flush=True)
    return row


def _checkpoint_errors(run, step: int, experiment: Experiment) -> dict:
    """Plain Lake errors of an intermediate checkpoint (a learning curve when checkpoint_every < episodes)."""
    learner, _, _ = load_learner(run, step)
    val = evaluate_lake(learner, experiment.image_set, experiment.split.val, 1000, seed=0, n_way=17)
    test = evaluate_lake(learner, experiment.image_set, experiment.split.test, 1000, seed=0)
    print(f"  step {step}: val {val.summary()}  test {test.summary()}", flush=True)
    return {"step": step, "val_error": val.error, "val_ci": val.ci95, "test_error": test.error, "test_ci": test.ci95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "omniglot"))
    parser.add_argument("--variant", action="append", default=[], help="a variant name (repeatable); see --list")
    parser.add_argument("--set", action="append", default=[], help="extra flat value for every variant, e.g. --set image_size=56")
    parser.add_argument("--suffix", default="", help="appended to the variant names in the output (e.g. -56px)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures" / "lake-ablation.json"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs-dir", default="runs/lake-ablation", help="where the trained variants are kept")
    parser.add_argument("--list", action="store_true")
    a = parser.parse_args()
    if a.list:
        for name, values in VARIANTS.items():
            print(f"{name:>22}  {values}")
        return
    torch.set_num_threads(a.threads)
    extra = {k: json.loads(v) for k, v in (item.split("=", 1) for item in a.set)}
    out = Path(a.out)
    results = json.loads(out.read_text()) if out.exists() else {"base": BASE, "rows": {}}
    for name in a.variant:
        values = {**BASE, "data_dir": a.data_dir, **VARIANTS[name], **extra}
        row = measure(name + a.suffix, values, Path(a.runs_dir))
        row.update(date=str(date.today()), threads=a.threads, machine=platform.processor() or platform.machine())
        row["command"] = " ".join(["python scripts/lake_ablation.py --variant", name, *(f"--set {s}" for s in a.set)])
        results["rows"][name + a.suffix] = row
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
