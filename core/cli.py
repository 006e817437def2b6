"""python -m core {train, eval, predict, download, bench, tasks}: the engine without the dashboard."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict

from core.atomic import StorageError
from core.config import ConfigError, EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.data.base import DataError
from core.store import CheckpointError, RunDir, RunStore
from core.tasks.cli import add_tasks_parser
from core.training.run import RunError

USER_ERRORS = (ConfigError, DataError, CheckpointError, StorageError, RunError, FileNotFoundError)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a wrong argument in one line (no usage dump) and exits with 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        fail(f"{message} (see python -m core {self.prog.split()[-1]} --help)")


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def add_train_args(p: argparse.ArgumentParser) -> None:
    d_train, d_learner = TrainConfig(), LearnerConfig()
    p.add_argument("--dataset", default=d_train.dataset, help="glyphs (built in), omniglot or folder")
    p.add_argument("--data-dir", default=None, help="folder of the dataset (Omniglot zips or class sub-folders)")
    p.add_argument("--image-size", type=int, default=d_train.image_size)
    p.add_argument("--method", default=d_learner.method, help="learner name, e.g. protonet, matching, relation, siamese, triplet")
    p.add_argument("--backbone", default=d_learner.backbone)
    p.add_argument("--distance", default=d_learner.distance)
    p.add_argument("--margin", type=float, default=d_learner.margin)
    p.add_argument("--fce", action="store_true", help="Matching Networks: full-context embeddings")
    p.add_argument("--inner-steps", type=int, default=d_learner.inner_steps)
    p.add_argument("--inner-lr", type=float, default=d_learner.inner_lr)
    p.add_argument("--first-order", action="store_true")
    p.add_argument("--hidden", type=int, default=d_learner.hidden, help="model-based / learned-optimizer hidden size")
    p.add_argument("--n-way", type=int, default=d_train.train_shape.n_way, help="classes per training episode")
    p.add_argument("--k-shot", type=int, default=d_train.train_shape.k_shot)
    p.add_argument("--q-query", type=int, default=d_train.train_shape.q_query)
    p.add_argument("--eval-n-way", type=int, default=5, help="classes per validation episode")
    p.add_argument("--episodes", type=int, default=d_train.episodes, help="optimizer steps")
    p.add_argument("--meta-batch", type=int, default=d_train.meta_batch)
    p.add_argument("--no-rotations", action="store_true", help="do not add rotated copies as extra classes")
    p.add_argument("--optimizer", default=d_train.optimizer)
    p.add_argument("--lr", type=float, default=d_train.lr)
    p.add_argument("--schedule", default=d_train.schedule)
    p.add_argument("--seed", type=int, default=d_train.seed)
    p.add_argument("--val-every", type=int, default=d_train.val_every)
    p.add_argument("--val-episodes", type=int, default=d_train.val_episodes)
    p.add_argument("--checkpoint-every", type=int, default=d_train.checkpoint_every)
    p.add_argument("--device", default=d_train.device)
    p.add_argument("--precision", default=d_train.precision, help="auto (bf16 on a GPU, fp32 on the CPU), fp32 or bf16")
    p.add_argument("--within-alphabet", type=float, default=d_train.within_alphabet, help="share of episodes from one alphabet (0..1)")
    p.add_argument("--split-drawers", action="store_true", help="support by one drawer, queries by others (k-shot 1)")
    for name, unit in (("rotation", "degrees"), ("shear", "degrees"), ("scale", "relative"), ("translate", "fraction of the side"),
                       ("elastic", "fraction of the side"), ("thickness", "0..1")):  # fmt: skip
        p.add_argument(f"--aug-{name}", type=float, default=getattr(d_train, f"aug_{name}"), help=f"augmentation: {name}, {unit} (0: off)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--init-from", default=None, help="a .safetensors checkpoint of a compatible run to start from")


def config_from_args(a: argparse.Namespace) -> RunConfig:
    learner = LearnerConfig(
        method=a.method, backbone=a.backbone, distance=a.distance, margin=a.margin, fce=a.fce,
        inner_steps=a.inner_steps, inner_lr=a.inner_lr, first_order=a.first_order, hidden=a.hidden,
    )  # fmt: skip
    train = TrainConfig(
        dataset=a.dataset, data_dir=a.data_dir, image_size=a.image_size, episodes=a.episodes,
        train_shape=EpisodeShape(a.n_way, a.k_shot, a.q_query), eval_shape=EpisodeShape(a.eval_n_way, a.k_shot, 15),
        meta_batch=a.meta_batch, rotations=not a.no_rotations, optimizer=a.optimizer, lr=a.lr, schedule=a.schedule,
        seed=a.seed, val_every=a.val_every, val_episodes=a.val_episodes, checkpoint_every=a.checkpoint_every, device=a.device,
        precision=a.precision, within_alphabet=a.within_alphabet, split_drawers=a.split_drawers,
        **{f"aug_{n}": getattr(a, f"aug_{n}") for n in ("rotation", "shear", "scale", "translate", "elastic", "thickness")},
    )  # fmt: skip
    return RunConfig(learner, train)


def cmd_train(a: argparse.Namespace) -> None:
    from core.experiment import Experiment
    from core.training.progress import ProgressBar
    from core.training.run import train_run

    config = config_from_args(a)
    experiment = Experiment.from_config(config.train)  # fails early, before a run folder exists
    for warning in experiment.image_set.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    experiment.pool("train", config.train.rotations).check(config.train.train_shape)
    run = RunStore(a.runs_dir).create(config)
    status = train_run(config, run, callbacks=[ProgressBar(config.train.episodes)], experiment=experiment, init_from=a.init_from)
    if status != "finished":
        print(f"run {status} early; its last checkpoint is saved", file=sys.stderr)
    print(run.path)


def cmd_eval(a: argparse.Namespace) -> None:
    from core.evaluation import evaluate
    from core.experiment import Experiment, load_learner

    run = RunDir(a.run)
    learner, config, checkpoint = load_learner(run, a.checkpoint)
    experiment = Experiment.from_config(config.train)
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
    from core.lake import LAKE_WAYS, LakeOptions, evaluate_lake

    n_way = a.n_way or LAKE_WAYS
    classes = experiment.split.classes(a.split)
    options = LakeOptions(tta=a.tta, center=a.center, refine=a.refine, balance=a.balance, seed=a.seed)
    result = evaluate_lake(learner, experiment.image_set, classes, a.episodes or 1000, a.seed, n_way, experiment.device, options)
    name = f"eval-lake-{a.split}.json" if n_way == LAKE_WAYS else f"eval-lake-{a.split}-{n_way}w.json"
    if not options.plain:
        name = name.replace(".json", f"-{options.tag}.json")
    run.write_json(name, {**result.to_dict(), "checkpoint_step": step, "split": a.split, "seed": a.seed, "options": asdict(options)})
    where = f"{result.episodes} Lake episodes, {n_way}-way within an alphabet, {a.split} split"
    print(f"{result.summary()}  (percent, 95% CI; {where}, {result.seconds:.2f} s)")
    print(f"figures written to {run.path / name}", file=sys.stderr)


def cmd_predict(a: argparse.Namespace) -> None:
    from core.predict import predict_folders

    rows = predict_folders(a.run, a.support, a.query, a.checkpoint)
    print("query,predicted_class,score")
    for query, predicted, score in rows:
        print(f"{_csv(query)},{_csv(predicted)},{score:.6f}")


def _csv(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text


def cmd_download(a: argparse.Namespace) -> None:
    from core.data.registry import load_dataset

    images = load_dataset(a.dataset, a.data_dir, a.image_size, download=True)
    where = a.data_dir or "the default location (found again without --data-dir)"
    print(f"{a.dataset}: {len(images.labels)} images of {len(images.class_names)} classes in {where}")


def cmd_bench(a: argparse.Namespace) -> None:
    from core.bench import run_benchmark

    print(json.dumps(run_benchmark(quick=a.quick, data_dir=a.data_dir, threads=a.threads, projections=not a.no_projections), indent=2))


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m core", description="MetaScope: few-shot meta-learning engine")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    train = sub.add_parser("train", help="meta-train a learner; prints the run folder last")
    add_train_args(train)
    train.set_defaults(func=cmd_train)
    ev = sub.add_parser("eval", help="accuracy ± 95%% CI over test episodes, or Lake's one-shot error (--protocol lake)")
    ev.add_argument("--run", required=True)
    ev.add_argument(
        "--protocol", default="episodes", choices=("episodes", "lake"),
        help="episodes: random N-way K-shot episodes; lake: Lake's 20-way within-alphabet one-shot runs, support and "
        "queries by two drawers (Omniglot only), printed as error %% ± 95%% CI",
    )  # fmt: skip
    ev.add_argument("--n-way", type=int, default=None, help="classes per episode (default 5; 20 for --protocol lake)")
    ev.add_argument("--k-shot", type=int, default=1)
    ev.add_argument("--q-query", type=int, default=15)
    ev.add_argument("--episodes", type=int, default=None, help="test episodes (default 600; 1000 for --protocol lake)")
    ev.add_argument("--split", default="test", choices=("train", "val", "test"))
    ev.add_argument("--checkpoint", type=int, default=None, help="step of the checkpoint (default: latest)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--tta", type=int, default=0, help="lake: augmented copies of each image averaged in embedding space")
    ev.add_argument("--center", action="store_true", help="lake, transductive: center supports and queries on their own means")
    ev.add_argument("--refine", type=int, default=0, help="lake, transductive: steps moving prototypes toward their queries")
    ev.add_argument("--balance", action="store_true", help="lake, transductive: one query per character (Sinkhorn)")
    ev.set_defaults(func=cmd_eval)
    pr = sub.add_parser("predict", help="classify query images from a support folder; CSV on stdout")
    pr.add_argument("--run", required=True)
    pr.add_argument("--support", required=True, help="one sub-folder of images per class")
    pr.add_argument("--query", required=True, help="a folder of images")
    pr.add_argument("--checkpoint", type=int, default=None)
    pr.set_defaults(func=cmd_predict)
    dl = sub.add_parser("download", help="fetch a dataset that has a downloader (omniglot, via torchvision; needs a network)")
    dl.add_argument("dataset", choices=("omniglot",))
    dl.add_argument("--data-dir", default=None, help="where to put it (default: the MetaScope cache, found again without --data-dir)")
    dl.add_argument("--image-size", type=int, default=28)
    dl.set_defaults(func=cmd_download)
    be = sub.add_parser("bench", help="speed benchmark; prints one JSON object")
    be.add_argument("--quick", action="store_true", help="small sizes, under a minute (CI)")
    be.add_argument("--data-dir", default=None, help="Omniglot folder (default: $METASCOPE_OMNIGLOT, else the built-in glyphs)")
    be.add_argument("--threads", type=int, default=2, help="torch threads for both pipelines (default 2)")
    be.add_argument("--no-projections", action="store_true", help="skip PCA/UMAP/t-SNE (CPU work), e.g. on a GPU machine")
    be.set_defaults(func=cmd_bench)
    add_tasks_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except USER_ERRORS as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; checkpoints written so far are kept")
