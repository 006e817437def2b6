"""The task-level study of one trained run, end to end: what `python -m core tasks` and the Tasks page run.

Setting (core.tasks.library says where tasks come from and which are related):
- the task encoder trains on tasks of the meta-train classes;
- the held-out new tasks are drawn on the meta-test classes, the library of stored tasks as `library` says
  (by default "mixed": tasks of every group, so only some share a new task's group or classes);
- stored tasks are solved (the task model, core.tasks.models, fine-tuned on their stored_k_shot-shot
  support); every way of comparing tasks (core.tasks.retrieval) ranks the library for each new task, and
  its precision at k against the known relations is measured;
- each new task is fine-tuned from each start of core.tasks.warmstart.STARTS and scored on its own queries:
  warm lends from the k stored tasks the chosen retrieval ranks first, warm-random from k drawn at random.
The NMF runs on the class memberships (or pooled embeddings) of tasks drawn within the groups of all
classes: a description of the data, with no held-out figure to protect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from core.config import MAX_EPISODE_SIDE, MAX_SEED, ConfigError, EpisodeShape, check_fields
from core.data.base import ImageSet
from core.data.splits import ClassSplit
from core.episodes import EpisodeSpec
from core.learners import MetaLearner
from core.tasks.draw import TaskDrawer
from core.tasks.embedding import TaskEncoder, metric_embeddings, parameter_embeddings, train_task_encoder
from core.tasks.features import ImageFeatures
from core.tasks.library import LIBRARIES, RELATIONS, library_drawers, related
from core.tasks.models import MODELS, make_task_model
from core.tasks.nmf import NMFResult, membership_matrix, task_nmf
from core.tasks.retrieval import RETRIEVALS, centroid_vectors, matching_similarity, precision_table, random_neighbours, top_k
from core.tasks.similarity import cross_similarity
from core.tasks.warmstart import LENDS, StartComparison, StoredTask, compare_starts, solve_tasks

Progress = Callable[[str, int, int], None]  # (stage, done, total)
EMBEDDINGS = RETRIEVALS  # the ways of finding the nearest stored tasks (the flag keeps its first name)

MAX_TASKS = 100_000  # stored, new and factorised tasks; training steps of the task encoder and of a task


@dataclass(frozen=True)
class StudyConfig:
    """Settings of a task study; validated, saved with its figures."""

    n_way: int = 5
    k_shot: int = 1  # shots of the new tasks
    q_query: int = 10  # queries per class of the new tasks (Omniglot: 20 images, 6 go to the library)
    stored_k_shot: int = 5
    stored_tasks: int = 400
    new_tasks: int = 200
    library: str = "mixed"  # see core.tasks.library
    embedding: str = "prototypes"  # how the nearest stored tasks are found (core.tasks.retrieval.RETRIEVALS)
    k: int = 5  # nearest stored tasks lending their weights (and random ones lending to the control)
    steps: tuple[int, ...] = (0, 1, 5, 10)
    model: str = "auto"  # auto | head | network: what a task fine-tunes (core.tasks.models)
    lr: float = 5.0  # the head model's step size (features are unit vectors, so the loss is flat: large steps)
    solve_steps: int = 10  # fine-tuning steps of a stored task's model
    prior_weight: float = 0.5  # a transferred row weighs this many fine-tuning steps of the task's own data
    lend: str = "both"  # both | backbone | head: what warm starts take from the stored tasks (core.tasks.warmstart.LENDS)
    encoder_steps: int = 300
    nmf_tasks: int = 400
    nmf_factors: int = 0  # 0: one per group of the dataset (at most 12)
    nmf_features: str = "membership"  # membership | embedding
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        EpisodeShape(self.n_way, self.k_shot, self.q_query)  # validates N, K, Q
        checks = [  # (fine, the setting, what to change)
            (self.library in LIBRARIES, "library", f"unknown library '{self.library}'; use one of: {', '.join(LIBRARIES)}"),
            (self.model in MODELS, "model", f"unknown task model '{self.model}'; use one of: {', '.join(MODELS)}"),
            (self.lend in LENDS, "lend", f"unknown lend '{self.lend}'; use one of: {', '.join(LENDS)}"),
            (self.embedding in EMBEDDINGS, "embedding", f"unknown embedding '{self.embedding}'; use one of: {', '.join(EMBEDDINGS)}"),
            (self.nmf_features in ("membership", "embedding"), "nmf_features",
             f"unknown NMF features '{self.nmf_features}'; use membership or embedding"),
            (self.stored_k_shot >= 1, "stored_k_shot", f"stored tasks need at least 1 support image per class (got {self.stored_k_shot})"),
            (self.stored_tasks >= 1, "stored_tasks", f"keep at least 1 stored task (got {self.stored_tasks})"),
            (self.new_tasks >= 1, "new_tasks", f"use at least 1 new task (got {self.new_tasks})"),
            (1 <= self.k <= self.stored_tasks, "k", f"ask for 1 to {self.stored_tasks} nearest tasks, the number stored (got {self.k})"),
            (len(self.steps) > 0 and min(self.steps) >= 0 and max(self.steps) <= 1000, "steps", "report 0 to 1000 fine-tuning steps"),
            (self.lr > 0, "lr", f"the head's step size must be positive (got {self.lr})"),
            (self.prior_weight > 0, "prior_weight", f"a transferred row's weight must be positive (got {self.prior_weight})"),
            (self.encoder_steps >= 0, "encoder_steps", f"train the task encoder for 0 or more steps (got {self.encoder_steps})"),
            (self.solve_steps >= 1, "solve_steps", f"fine-tune each stored task for at least 1 step (got {self.solve_steps})"),
            (self.nmf_tasks >= 2, "nmf_tasks", f"factorise at least 2 tasks (got {self.nmf_tasks})"),
            (self.nmf_factors >= 0, "nmf_factors", f"use 0 NMF factors (one per group) or more (got {self.nmf_factors})"),
            # upper bounds: past them a study would run for days or exhaust memory
            (self.stored_k_shot <= MAX_EPISODE_SIDE, "stored_k_shot", f"use at most {MAX_EPISODE_SIDE:,} shots"),
            (max(self.stored_tasks, self.new_tasks, self.nmf_tasks) <= MAX_TASKS, "stored_tasks", f"use at most {MAX_TASKS:,} tasks each"),
            (max(self.encoder_steps, self.solve_steps) <= MAX_TASKS, "encoder_steps", f"use at most {MAX_TASKS:,} training steps"),
            (self.nmf_factors <= 1000, "nmf_factors", "use at most 1000 NMF factors"),
            (self.lr <= 1000, "lr", "the head's step size must be at most 1000"),
            (self.prior_weight <= 1e6, "prior_weight", "a transferred row's weight must be at most 1e6"),
            (0 <= self.seed <= MAX_SEED, "seed", f"use a seed from 0 to {MAX_SEED}"),
        ]  # fmt: skip
        for ok, setting, message in checks:
            if not ok:
                raise ConfigError(message, setting)


@dataclass
class TaskStudy:
    """Everything a study computed, as tensors and plain data (the page and the CLI draw from it)."""

    config: StudyConfig
    stored: list[StoredTask]
    stored_groups: list[str]
    new: list[EpisodeSpec]
    new_groups: list[str]
    embeddings: dict[str, torch.Tensor]  # vector kind -> (stored + new, d), stored rows first (the task map)
    similarity: dict[str, torch.Tensor]  # retrieval -> (new, stored)
    related: dict[str, torch.Tensor]  # relation -> (new, stored) bool
    nearest: torch.Tensor  # (new, k) library indices warm lends from, most similar first
    random: torch.Tensor  # (new, k) library indices warm-random lends from
    comparison: StartComparison
    nmf: NMFResult
    nmf_groups: list[str]  # the group each NMF task was drawn in
    encoder_losses: list[float] = field(default_factory=list)

    def precision(self) -> list[dict]:
        """Precision at 1, 5 and k of every retrieval against every relation (core.tasks.retrieval.precision_table)."""
        return precision_table(self.similarity, self.related, sorted({1, min(5, len(self.stored)), self.config.k}))

    def lender(self, j: int, i: int) -> dict:
        """Stored task i as new task j sees it: {'index', 'task' ({'class_ids', 'support'}), 'group', 'similarity'
        (by the study's retrieval), 'same group', 'shared classes' (how many of j's classes it holds)}."""
        return {
            "index": i, "task": support_of(self.stored[i].spec), "group": self.stored_groups[i],
            "similarity": float(self.similarity[self.config.embedding][j, i]), "same group": bool(self.related["group"][j, i]),
            "shared classes": len(set(self.new[j].class_ids) & set(self.stored[i].spec.class_ids)),
        }  # fmt: skip

    def examples(self, n: int = 12) -> list[dict]:
        """The first n new tasks, each {'task', 'group', 'nearest': [lender...], 'random': [lender...]}: what warm
        and warm-random lent from."""
        lenders = lambda j, chosen: [self.lender(j, i) for i in chosen[j].tolist()]
        return [
            {
                "task": support_of(self.new[j]),
                "group": self.new_groups[j],
                "nearest": lenders(j, self.nearest),
                "random": lenders(j, self.random),
            }
            for j in range(min(n, len(self.new)))
        ]

    def summary(self) -> dict:
        """Plain data of every figure (written as JSON by the CLI, drawn by the Tasks page)."""
        return {
            "config": asdict(self.config), "warm_start": self.comparison.to_dict(), "retrieval_precision": self.precision(),
            "examples": self.examples(), "nmf_error": self.nmf.error,
        }  # fmt: skip


def support_of(spec: EpisodeSpec) -> dict:
    """{'class_ids', 'support'} of a task as plain lists: what the page needs to show it (its queries left out)."""
    return {"class_ids": list(spec.class_ids), "support": [list(row) for row in spec.support]}


def run_study(
    learner: MetaLearner, image_set: ImageSet, split: ClassSplit, config: StudyConfig, progress: Progress | None = None
) -> TaskStudy:
    """Train the task encoder, rank the library for each new task every way, compare the starts, factorise."""
    report = progress or (lambda stage, done, total: None)
    features = ImageFeatures(learner, image_set)
    new_shape = EpisodeShape(config.n_way, config.k_shot, config.q_query)
    stored_drawer, new_drawer = library_drawers(image_set, split, config.library, new_shape, config.stored_k_shot, config.seed)
    stored_specs, new = stored_drawer.draw_many(config.stored_tasks), new_drawer.draw_many(config.new_tasks)
    train_drawer = TaskDrawer(image_set, split.train, EpisodeShape(config.n_way, config.k_shot, 1), config.seed + 2)
    with torch.random.fork_rng():  # seeded initial weights without touching the caller's random state
        torch.manual_seed(config.seed)
        encoder = TaskEncoder(features.rows([0]).shape[1])
    losses = train_task_encoder(
        encoder,
        features,
        train_drawer,
        config.encoder_steps,
        on_step=lambda s, _: report("training the task encoder", s, config.encoder_steps),
    )
    report("solving the stored tasks", 0, 1)
    model = make_task_model(config.model, learner, features, config.lr)
    stored = solve_tasks(model, features, stored_specs, config.solve_steps)
    report("ranking the library", 0, 1)
    embeddings, similarity = task_similarities(features, encoder, stored_specs, new, config.lr)
    relations = {r: related(image_set, new, stored_specs, r) for r in RELATIONS}
    nearest = top_k(similarity[config.embedding], config.k)
    random = random_neighbours(len(stored), len(new), config.k, config.seed)
    comparison = compare_starts(
        model, features, stored, new, nearest, random, config.steps, config.prior_weight, config.seed,
        on_task=lambda done, total: report("fine-tuning the new tasks", done, total), lend=config.lend,
    )  # fmt: skip
    nmf, nmf_groups = study_nmf(features, image_set, config)
    groups = [stored_drawer.group_of(s) for s in stored_specs], [new_drawer.group_of(s) for s in new]
    return TaskStudy(
        config, stored, groups[0], new, groups[1], embeddings, similarity, relations, nearest, random, comparison, nmf, nmf_groups, losses
    )


def task_similarities(
    features: ImageFeatures, encoder: TaskEncoder, stored: list[EpisodeSpec], new: list[EpisodeSpec], lr: float
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """({vector kind: (stored + new, d)}, {retrieval: (new, stored) similarity}) for every retrieval in RETRIEVALS."""
    tasks, n = stored + new, len(stored)
    protos = [features.prototypes(t) for t in tasks]
    vectors = {
        "metric": metric_embeddings(encoder, features, tasks),
        "parameter": parameter_embeddings(features, tasks, lr=lr),
        "centroid": centroid_vectors(protos),
    }
    similarity = {"prototypes": matching_similarity(protos[n:], protos[:n])}
    similarity |= {kind: cross_similarity(e[n:], e[:n]) for kind, e in vectors.items()}
    return vectors, {kind: similarity[kind] for kind in RETRIEVALS}


def study_nmf(features: ImageFeatures, image_set: ImageSet, config: StudyConfig) -> tuple[NMFResult, list[str]]:
    """NMF of tasks drawn within the groups of all classes -> (result, the group of each task)."""
    all_classes = list(range(image_set.n_classes))
    drawer = TaskDrawer(image_set, all_classes, EpisodeShape(config.n_way, config.k_shot, 1), config.seed + 3)
    specs = drawer.draw_many(config.nmf_tasks)
    factors = config.nmf_factors or min(len(drawer.groups), 12)
    if config.nmf_features == "membership":
        x, names = membership_matrix(specs, all_classes), list(image_set.class_names)
    else:  # mean support embedding: non-negative after a ReLU backbone, clipped at zero otherwise
        x = np.stack([features.support(s)[0].mean(0).clamp_min(0).numpy() for s in specs])
        names = [f"unit {j}" for j in range(x.shape[1])]
    return task_nmf(x, names, min(factors, *x.shape), config.seed), [drawer.group_of(s) for s in specs]
