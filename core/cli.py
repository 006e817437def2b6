"""python -m core {train, eval, predict, runs, download, bench, tasks}: the engine without the dashboard.

One error boundary for every command: a problem the user can fix prints one line that says what to change
(and the flag concerned) and exits 2; a disk that cannot be written exits 1; anything unexpected prints one
line naming the log file that holds its traceback (core.crashlog) and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from core.atomic import StorageError
from core.config import MAX_SEED, MAX_STEPS, EpisodeShape, RunConfig
from core.crashlog import log_traceback
from core.data.progress import terminal_hooks
from core.data.registry import DATASETS, default_image_size
from core.errors import UserError, explain, one_line
from core.recipes import RECIPES, with_recipe
from core.store import CheckpointError, RunDir, RunStore
from core.tasks.cli import add_tasks_parser

# flat setting (RunConfig.from_flat) -> (flag, type, help, choices); defaults come from the config classes
TRAIN_FLAGS: dict[str, tuple[str, Any, str, tuple[str, ...] | None]] = {
    "dataset": ("--dataset", str, "the data (see docs/datasets.md)", tuple(DATASETS)),
    "data_dir": ("--data-dir", str, "folder of the dataset (Omniglot zips or folders, class sub-folders, a benchmark's folder)", None),
    "image_size": ("--image-size", int, "pixels a side (default: 84 for the ImageNet-like benchmarks, 32 for CIFAR, else 28)", None),
    "method": ("--method", str, "the learner", None),
    "backbone": ("--backbone", str, "the image encoder", None),
    "distance": ("--distance", str, "metric of metric-based learners", ("euclidean", "cosine")),
    "margin": ("--margin", float, "contrastive / triplet loss margin", None),
    "fce": ("--fce", bool, "Matching Networks: full-context embeddings", None),
    "relation_hidden": ("--relation-hidden", int, "Relation Networks: hidden units of the relation module", None),
    "inner_steps": ("--inner-steps", int, "MAML family: adaptation steps per task", None),
    "inner_lr": ("--inner-lr", float, "MAML family: inner-loop step size", None),
    "first_order": ("--first-order", bool, "MAML: drop second-order terms", None),
    "hidden": ("--hidden", int, "model-based / learned-optimizer hidden size", None),
    "n_way": ("--n-way", int, "classes per training episode", None),
    "k_shot": ("--k-shot", int, "support images per class", None),
    "q_query": ("--q-query", int, "query images per class of a training episode", None),
    "eval_n_way": ("--eval-n-way", int, "classes per validation episode", None),
    "episodes": ("--episodes", int, "optimizer steps", None),
    "meta_batch": ("--meta-batch", int, "episodes averaged per optimizer step", None),
    "batch_episodes": ("--batch-episodes", str, "auto: a meta-batch in one pass on a GPU, one episode at a time on a CPU",
                       ("auto", "on", "off")),
    "rotations": ("--no-rotations", bool, "do not add rotated copies as extra training classes", None),
    "optimizer": ("--optimizer", str, "outer-loop optimizer", ("adam", "sgd")),
    "lr": ("--lr", float, "outer learning rate", None),
    "schedule": ("--schedule", str, "learning-rate schedule over the run", ("cosine", "step", "constant")),
    "seed": ("--seed", int, "seed of the initial weights and of the episode stream", None),
    "val_every": ("--val-every", int, "steps between validations (0: never)", None),
    "val_episodes": ("--val-episodes", int, "episodes per validation", None),
    "checkpoint_every": ("--checkpoint-every", int, "steps between checkpoints (the last step is always saved)", None),
    "device": ("--device", str, "auto (a CUDA GPU when there is one), cpu, cuda or cuda:N", None),
    "precision": ("--precision", str, "auto: bf16 autocast where the hardware computes it (GPU, CPU with AVX512-BF16 or AMX), else fp32",
                  ("auto", "fp32", "bf16")),
    "compile": ("--compile", str, "torch.compile the training loss (reduce-overhead: CUDA graphs on a GPU)",
                ("off", "default", "reduce-overhead")),
    "within_alphabet": ("--within-alphabet", float, "share of training episodes from one alphabet (0..1)", None),
    "split_drawers": ("--split-drawers", bool, "training support by one drawer, queries by others (k-shot 1)", None),
    "aug_rotation": ("--aug-rotation", float, "augmentation: rotation, degrees (0: off)", None),
    "aug_shear": ("--aug-shear", float, "augmentation: shear, degrees (0: off)", None),
    "aug_scale": ("--aug-scale", float, "augmentation: scale, relative (0: off)", None),
    "aug_translate": ("--aug-translate", float, "augmentation: shift, fraction of the side (0: off)", None),
    "aug_elastic": ("--aug-elastic", float, "augmentation: elastic distortion, fraction of the side (0: off)", None),
    "aug_thickness": ("--aug-thickness", float, "augmentation: stroke thickness, 0..1 (0: off)", None),
}  # fmt: skip
OTHER_FLAGS = {"runs_dir": "--runs-dir", "init_from": "--init-from", "run": "--run", "episodes": "--episodes", "resume": "--resume"}


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a wrong argument in one line (no usage dump) and exits with 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        fail(f"{message} (see {self.prog} --help)")


def fail(message: str, status: int = 2) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr)
    raise SystemExit(status)


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`, refused in one line otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text[:40]}' is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"use {low:,} to {high:,} (got {text[:40]})")
        return value

    return parse


def path_text(text: str) -> str:
    """An argparse type: a non-empty path (an empty one would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a path (the value is empty)")
    return text


def flag_of(setting: str | None) -> str | None:
    """The command-line flag of a config setting, for the hint after an error."""
    if setting in TRAIN_FLAGS:
        return TRAIN_FLAGS[setting][0]
    return OTHER_FLAGS.get(setting or "")


def add_train_args(p: argparse.ArgumentParser) -> None:
    """The training flags; each absent flag keeps its default (or the recipe's value)."""
    from core.learners import LEARNERS
    from core.models.backbones import BACKBONES

    defaults = RunConfig().to_flat()
    p.add_argument(
        "--recipe", default=argparse.SUPPRESS, choices=list(RECIPES),
        help="start from a named recipe; flags given beside it override it (default: none, each flag's own default)",
    )  # fmt: skip
    for key, (flag, kind, text, choices) in TRAIN_FLAGS.items():
        choices = {"method": tuple(LEARNERS), "backbone": tuple(BACKBONES)}.get(key, choices)
        if kind is bool:
            negated = flag.startswith("--no-")  # --no-rotations: the setting is on unless the flag is given
            action = "store_false" if negated else "store_true"
            p.add_argument(flag, dest=key, action=action, default=argparse.SUPPRESS, help=f"{text} (default: off)")
        else:
            p.add_argument(flag, dest=key, type=kind, choices=choices, default=argparse.SUPPRESS, help=with_default(text, defaults[key]))
    p.add_argument("--runs-dir", type=path_text, default="runs", help="folder of the run folders (default: runs)")
    p.add_argument(
        "--init-from", type=path_text, default=None, help="a .safetensors checkpoint of a compatible run to start from (default: none)"
    )
    p.add_argument(
        "--resume", type=path_text, default=None, metavar="RUN",
        help="continue an interrupted or stopped run (a folder, or an id in --runs-dir) from its last checkpoint; "
        "auto: the newest such run of the settings given, or a new run when there is none (default: none)",
    )  # fmt: skip


def with_default(text: str, default: Any) -> str:
    """A flag's help line ending with its default, as `--help` shows every flag's."""
    return f"{text} (default: {'none' if default is None else default})"


def config_from_args(a: argparse.Namespace) -> RunConfig:
    given = {k: v for k, v in vars(a).items() if k in TRAIN_FLAGS}
    flat = with_recipe(getattr(a, "recipe", None), given)
    flat.setdefault("image_size", default_image_size(flat.get("dataset", RunConfig().train.dataset)))
    return RunConfig.from_flat(flat)


def cmd_train(a: argparse.Namespace) -> None:
    """Train in this process, or as one process of a torchrun job (core.training.job): the data is checked before a run
    folder exists; rank 0 prints the run folder last."""
    from core.training.job import AUTO, JobStopped, train_job
    from core.training.progress import ProgressBar

    given = [flag_of(k) for k in vars(a) if k in TRAIN_FLAGS] + (["--recipe"] if "recipe" in a else [])
    auto = a.resume == AUTO  # the settings name the run to continue, or the new run when none is left
    if a.resume and not auto and (given or a.init_from):
        fail(f"--resume continues a run with its own settings; drop {' '.join(given or ['--init-from'])}")
    config = None if a.resume and not auto else config_from_args(a)
    RunStore(a.runs_dir).check()  # fails early, before the data is loaded and before a run folder exists
    bars: list[ProgressBar] = []

    def progress(config: RunConfig) -> list[ProgressBar]:
        bars.append(ProgressBar(config.train.episodes, config.train.meta_batch))
        return bars

    def close_bars() -> None:
        for bar in bars:  # an error's line must not share the bar's line
            bar.bar.close()

    def stopped(message: str) -> None:  # the job lost a process (from a watcher thread when torchrun's SIGTERM came first)
        close_bars()
        print(f"error: {one_line(message)}", file=sys.stderr, flush=True)

    try:
        status, run = train_job(
            config, a.runs_dir, a.resume, a.init_from, progress, terminal_hooks(), lambda t: print(t, file=sys.stderr), stopped
        )
    except BaseException as exc:
        close_bars()
        if isinstance(exc, JobStopped):
            raise SystemExit(1) from None  # its line is said
        raise
    if run is None:
        return  # another process of a torchrun job: rank 0 reports
    if status != "finished":
        print(f"run {status} early; its last checkpoint is saved", file=sys.stderr)
    print(run.path)


def cmd_eval(a: argparse.Namespace) -> None:
    from core.evaluation import evaluate
    from core.experiment import Experiment, load_learner

    run = RunDir(a.run)
    learner, config, checkpoint = load_learner(run, a.checkpoint)
    experiment = Experiment.from_config(config.train, hooks=terminal_hooks())
    learner = learner.to(experiment.device)
    if a.protocol == "lake":
        return _eval_lake(a, run, learner, experiment, checkpoint.step)
    shape = EpisodeShape(a.n_way or 5, a.k_shot, a.q_query)
    result = evaluate(learner, experiment.pool(a.split), shape, a.episodes or 600, a.seed)
    name = f"eval-{a.split}-{shape.n_way}w{shape.k_shot}s.json"
    run.write_json(name, {**result.to_dict(), "checkpoint_step": checkpoint.step, "split": a.split, "seed": a.seed})
    print(f"{result.summary()}  ({result.episodes} episodes, {a.split} split, {result.seconds:.2f} s)")
    print(f"figures written to {run.path / name}", file=sys.stderr)


def _eval_lake(a: argparse.Namespace, run: RunDir, learner, experiment, step: int) -> None:
    """Lake's 20-way within-alphabet one-shot protocol; prints the error (percent) with its 95% CI."""
    from core.lake import LAKE_WAYS, LakeOptions, evaluate_lake, store_result

    n_way = a.n_way or LAKE_WAYS
    classes = experiment.split.classes(a.split)
    options = LakeOptions(
        tta=a.tta, tta_strength=a.tta_strength, align=a.align, center=a.center, refine=a.refine, balance=a.balance, seed=a.seed
    )
    result = evaluate_lake(learner, experiment.image_set, classes, a.episodes or 1000, a.seed, n_way, experiment.device, options)
    name = store_result(run, result, a.split, options, step, a.seed)
    where = f"{result.episodes} Lake episodes, {n_way}-way within an alphabet, {a.split} split"
    print(f"{result.summary()}  (percent, 95% CI; {where}, {result.seconds:.2f} s)")
    print(f"figures written to {run.path / name}", file=sys.stderr)


def cmd_predict(a: argparse.Namespace) -> None:
    from core.predict import predict_folders

    rows = predict_folders(a.run, a.support, a.query, a.checkpoint)
    print("query,predicted_class,score")
    for query, predicted, score in rows:
        print(f"{_csv(query)},{_csv(predicted)},{score:.6f}")


def printable(text: str) -> str:
    """A file name as stdout can print it: one that is not valid UTF-8 reaches Python as lone surrogates, which
    a UTF-8 stdout refuses; its bytes are shown as \\xNN instead."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name made (a JSON escape): shown as \\udNNN
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _csv(text: str) -> str:
    text = printable(text)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n\r') else text


def cmd_runs(a: argparse.Namespace) -> None:
    """One line per run folder: its id, status (a run whose process died reads interrupted), progress and what it is."""
    store = RunStore(a.runs_dir)
    if not store.root.is_dir():
        raise UserError(f"{store.root} is not a folder of runs", "runs_dir")
    rows = [("run", "status", "step", "method", "dataset", "val_acc", "problem")]
    for run in store.runs():
        info = run.info()
        try:
            config = run.config()
            what, problem = (config.learner.method, config.train.dataset), ""
        except CheckpointError as exc:
            what, problem = ("?", "?"), str(exc)
        acc = info.get("final_val_acc")
        step = info.get("final_step", "")
        rows.append((run.id, run.status(), str(step), *what, "" if acc is None else f"{100 * acc:.2f}%", one_line(problem)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(printable("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + ("  " + row[-1] if row[-1] else "")))


def cmd_download(a: argparse.Namespace) -> None:
    from core.data.registry import load_dataset

    images = load_dataset(a.dataset, a.data_dir, a.image_size, download=True, hooks=terminal_hooks())
    where = a.data_dir or "the default location (found again without --data-dir)"
    print(f"{a.dataset}: {len(images.labels)} images of {len(images.class_names)} classes in {where}")


def cmd_bench(a: argparse.Namespace) -> None:
    from core.bench import run_benchmark

    figures = run_benchmark(
        quick=a.quick, data_dir=a.data_dir, threads=a.threads, projections=not a.no_projections, dataset=a.dataset, image_size=a.image_size
    )
    print(json.dumps(figures, indent=2))


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m core", description="MetaScope: few-shot meta-learning engine")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    train = sub.add_parser("train", help="meta-train a learner; prints the run folder last")
    add_train_args(train)
    train.set_defaults(func=cmd_train)
    ev = sub.add_parser("eval", help="accuracy ± 95%% CI over test episodes, or Lake's one-shot error (--protocol lake)")
    ev.add_argument("--run", type=path_text, required=True, help="the run folder (required)")
    ev.add_argument(
        "--protocol", default="episodes", choices=("episodes", "lake"),
        help="episodes: random N-way K-shot episodes; lake: Lake's 20-way within-alphabet one-shot runs, support and "
        "queries by two drawers (Omniglot only), printed as error %% ± 95%% CI (default: episodes)",
    )  # fmt: skip
    ev.add_argument("--n-way", type=int, default=None, help="classes per test episode (default: 5; 20 for --protocol lake)")
    ev.add_argument("--k-shot", type=int, default=1, help="support images per class (default: 1)")
    ev.add_argument("--q-query", type=int, default=15, help="query images per class (default: 15)")
    ev.add_argument("--episodes", type=whole(1, MAX_STEPS), default=None, help="test episodes (default: 600; 1000 for --protocol lake)")
    ev.add_argument("--split", default="test", choices=("train", "val", "test"), help="classes to draw from (default: test)")
    ev.add_argument("--checkpoint", type=whole(0, 2**63 - 1), default=None, help="step of the checkpoint (default: latest)")
    ev.add_argument("--seed", type=whole(0, MAX_SEED), default=0, help="seed of the test episodes (default: 0)")
    ev.add_argument(
        "--tta", type=whole(0, 1024), default=0, help="lake: augmented copies of each image averaged in embedding space (default: 0)"
    )
    ev.add_argument(
        "--tta-strength", type=float, default=1.0, help="lake: scales the copies' rotation, scale and shift (1: 8°, 8%%, 4%%) (default: 1)"
    )
    ev.add_argument(
        "--align", action="store_true", help="lake: score each pair by its best-aligned test-time copies; needs --tta (default: off)"
    )
    ev.add_argument(
        "--center", action="store_true", help="lake, transductive: center supports and queries on their own means (default: off)"
    )
    ev.add_argument(
        "--refine", type=whole(0, 1000), default=0, help="lake, transductive: steps moving prototypes toward their queries (default: 0)"
    )
    ev.add_argument("--balance", action="store_true", help="lake, transductive: one query per character (Sinkhorn) (default: off)")
    ev.set_defaults(func=cmd_eval)
    pr = sub.add_parser("predict", help="classify query images from a support folder; CSV on stdout")
    pr.add_argument("--run", type=path_text, required=True, help="the run folder (required)")
    pr.add_argument("--support", type=path_text, required=True, help="one sub-folder of images per class (required)")
    pr.add_argument("--query", type=path_text, required=True, help="a folder of images (required)")
    pr.add_argument("--checkpoint", type=whole(0, 2**63 - 1), default=None, help="step of the checkpoint (default: latest)")
    pr.set_defaults(func=cmd_predict)
    ls = sub.add_parser("runs", help="list the runs with their status (a run whose process died reads interrupted)")
    ls.add_argument("--runs-dir", type=path_text, default="runs", help="folder of the run folders (default: runs)")
    ls.set_defaults(func=cmd_runs)
    dl = sub.add_parser("download", help="fetch a dataset that has a downloader (omniglot, cifar_fs, fc100; needs a network)")
    dl.add_argument("dataset", choices=("omniglot", "cifar_fs", "fc100"), help="the dataset (required)")
    dl.add_argument("--data-dir", default=None, help="where to put it (default: the MetaScope cache, found again without --data-dir)")
    dl.add_argument("--image-size", type=whole(8, 256), default=None, help="pixels a side (default: the dataset's: 28 Omniglot, 32 CIFAR)")
    dl.set_defaults(func=cmd_download)
    be = sub.add_parser("bench", help="speed benchmark; prints one JSON object")
    be.add_argument("--quick", action="store_true", help="small sizes, under a minute, as CI runs it (default: off)")
    be.add_argument("--dataset", default=None, help="a named benchmark to time on instead, e.g. mini_imagenet (default: none)")
    be.add_argument("--data-dir", default=None, help="Omniglot folder, or --dataset's (default: $METASCOPE_OMNIGLOT, else glyphs)")
    be.add_argument("--image-size", type=whole(8, 1024), default=None, help="with --dataset: pixels a side (default: the dataset's)")
    be.add_argument("--threads", type=whole(1, 1024), default=2, help="torch threads for both pipelines (default: 2)")
    be.add_argument("--no-projections", action="store_true", help="skip PCA/UMAP/t-SNE (CPU work), e.g. on a GPU machine (default: off)")
    be.set_defaults(func=cmd_bench)
    add_tasks_parser(sub)
    return parser


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-command parsers of `parser`, by name."""
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def unknown_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """(the command named in argv, the --flags it does not have): checked before argparse, which would first
    complain of a missing required flag and never name the misspelt one."""
    command = next((a for a in argv if not a.startswith("-")), None)
    sub = commands(parser).get(command or "")
    if sub is None:
        return command, []
    return command, [a for a in argv if a.startswith("--") and a.split("=")[0] not in sub._option_string_actions]


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command, extra = unknown_flags(parser, argv)
    if extra:  # argparse would name the top-level help; the flags belong to the command's
        fail(f"unrecognized arguments: {' '.join(extra)} (see python -m core {command} --help)")
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except StorageError as exc:
        fail(str(exc), status=1)
    except FileNotFoundError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; checkpoints written so far are kept")
    except Exception as exc:  # the one boundary: a user's problem in its words, anything else logged
        known = explain(exc)
        if known is None:
            log = log_traceback(exc, f"python -m core {' '.join(sys.argv[1:] if argv is None else argv)}")
            where = f"the full traceback is in {log}" if log else "no log folder was writable for its traceback"
            fail(f"unexpected {type(exc).__name__}: {exc}; {where}", status=1)
        flag = flag_of(known.setting)
        fail(f"{known} ({flag})" if flag and flag not in str(known) else str(known))
