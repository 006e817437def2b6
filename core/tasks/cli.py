"""python -m core tasks: the task-level study of a trained run (task embeddings, warm start, NMF)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from core.config import ConfigError
from core.tasks.library import LIBRARIES
from core.tasks.models import MODELS
from core.tasks.study import EMBEDDINGS, StudyConfig
from core.tasks.warmstart import LENDS

# flags taken straight from StudyConfig's fields (name -> help); steps is parsed apart
_FLAGS = {
    "n_way": "classes per task",
    "k_shot": "shots of the new tasks",
    "q_query": "queries per class of the new tasks",
    "stored_k_shot": "shots of the stored tasks",
    "stored_tasks": "tasks in the library",
    "new_tasks": "held-out new tasks",
    "k": "nearest stored tasks lending their weights (and random ones lending to the control)",
    "lr": "step size of the head model (the network model uses the run's inner_lr)",
    "solve_steps": "fine-tuning steps of a stored task's model",
    "prior_weight": "a transferred row weighs this many steps of the task's data",
    "encoder_steps": "contrastive training steps of the task encoder",
    "nmf_tasks": "tasks factorised by NMF",
    "nmf_factors": "NMF factors (0: one per group)",
    "seed": "seed of every draw",
}


LENT = {
    "both": "the mean adapted backbone of the k stored tasks and their head rows, matched to the new classes",
    "backbone": "the mean adapted backbone of the k stored tasks, with a zero head",
    "head": "the run's own backbone with the k stored tasks' head rows, matched to the new classes",
}


def add_tasks_parser(sub: argparse._SubParsersAction) -> None:
    """Register `tasks` on core.cli's sub-parsers."""
    p = sub.add_parser("tasks", help="task embeddings, warm vs cold start, NMF of tasks, for a trained run")
    p.add_argument("--run", required=True, help="run folder whose learner embeds the images (required)")
    p.add_argument("--checkpoint", type=int, default=None, help="step of the checkpoint (default: latest)")
    p.add_argument(
        "--library", default=StudyConfig().library, choices=LIBRARIES,
        help="stored tasks: of every group, with (mixed) or without (mixed-classes) the new tasks' classes on other images; "
        f"or only the test classes on other images (images), or other test classes (classes) (default: {StudyConfig().library})",
    )  # fmt: skip
    p.add_argument(
        "--model", default="auto", choices=MODELS,
        help="what a task fine-tunes: the whole network (auto: for the MAML family) or a frozen-feature head (default: auto)",
    )  # fmt: skip
    p.add_argument(
        "--embedding", default=StudyConfig().embedding, choices=EMBEDDINGS,
        help="how the nearest stored tasks are found: prototypes matched one-to-one, or a task embedding's cosine "
        f"(default: {StudyConfig().embedding})",
    )  # fmt: skip
    p.add_argument(
        "--lend", default="both", choices=LENDS,
        help="what warm starts take from the stored tasks: backbone and head rows, or one of them (default: both)",
    )  # fmt: skip
    p.add_argument(
        "--nmf-features", default="membership", choices=("membership", "embedding"),
        help="what NMF factorises: each task's class membership, or its embedding (default: membership)",
    )  # fmt: skip
    p.add_argument("--steps", default="0,1,5,10", help="fine-tuning steps to report, comma-separated (default: 0,1,5,10)")
    defaults = StudyConfig()
    for f in fields(StudyConfig):
        if f.name in _FLAGS:
            default = getattr(defaults, f.name)
            flag, text = f"--{f.name.replace('_', '-')}", f"{_FLAGS[f.name]} (default: {default})"
            p.add_argument(flag, type=type(default), default=default, help=text)
    p.set_defaults(func=cmd_tasks)


def cmd_tasks(a: argparse.Namespace) -> None:
    from core.experiment import Experiment, load_learner
    from core.store import RunDir
    from core.tasks.nmf import top_features, top_labels
    from core.tasks.retrieval import precision_lines
    from core.tasks.study import run_study

    try:
        steps = tuple(int(s) for s in a.steps.split(","))
    except ValueError:
        raise ConfigError(f"--steps {a.steps!r}: give whole numbers separated by commas, e.g. 0,1,5,10") from None
    chosen = {k: getattr(a, k) for k in (*_FLAGS, "library", "model", "embedding", "lend", "nmf_features")}
    config = StudyConfig(**chosen, steps=steps)
    run = RunDir(a.run)
    learner, run_config, checkpoint = load_learner(run, a.checkpoint)
    experiment = Experiment.from_config(run_config.train)
    study = run_study(learner.to(experiment.device), experiment.image_set, experiment.split, config, progress=_progress)
    print(file=sys.stderr)
    shape = f"{config.n_way}-way {config.k_shot}-shot"
    print(f"warm vs cold start: {config.new_tasks} new tasks ({shape}), {config.stored_tasks} stored, library={config.library}")
    print(f"retrieval: {config.embedding}; k={config.k} nearest stored tasks (warm) or k random ones (warm-random)")
    print(f"fine-tuned: {study.comparison.settings['model']}")
    print(f"warm start: {LENT[config.lend]}")
    print(study.comparison.table())
    print("\n".join(study.comparison.control_lines()))
    same = study.comparison.to_dict()["same_class_rows"]
    if config.lend != "backbone":
        print(f"head rows lent by the new class itself (on other images): warm {same['warm']:.1%}, warm-random {same['warm-random']:.1%}")
    print("\nretrieval precision: share of the k first-ranked stored tasks related to the new task (points ± 95% CI; random: base rate)")
    print("\n".join(precision_lines(study.precision())))
    print(f"\nNMF of {config.nmf_tasks} tasks' {config.nmf_features}: relative error {study.nmf.error:.3f}")
    for f, (feats, groups) in enumerate(zip(top_features(study.nmf, 3), top_labels(study.nmf, study.nmf_groups, 2), strict=True)):
        loads = ", ".join(f"{g} {w:.2f}" for g, w in groups)
        print(f"  factor {f}: mean loading of tasks by group: {loads}; top features: {', '.join(n for n, _ in feats)}")
    lent = "" if config.lend == "both" else f"-{config.lend}"
    name = f"tasks-{config.library}-{config.embedding}{lent}-seed{config.seed}.json"
    run.write_json(name, {**study.summary(), "checkpoint_step": checkpoint.step})
    print(f"figures written to {run.path / name}", file=sys.stderr)


def _progress(stage: str, done: int, total: int) -> None:
    print(f"\r{stage}: {done}/{total}   ", end="", file=sys.stderr, flush=True)
