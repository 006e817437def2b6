"""Warm start: a new task's model initialised from the models adapted on its most similar stored tasks.

The model of a task (core.tasks.models) is either the learner's whole network (MAML family) or a linear
head on its frozen features. Each stored task keeps its class prototypes and the model fine-tuned on its
support. For a new task the k nearest stored tasks (core.tasks.retrieval) lend their adapted weights:
- the backbone (network model only) starts at the mean of the neighbours' adapted backbones;
- the head takes the neighbours' head rows: their classes are pooled by dataset class id (a class met
  in several stored tasks gets the mean of its normalised prototypes and of its normalised rows); the
  new task's classes are matched one-to-one to the pooled classes by cosine similarity of prototypes
  (Hungarian assignment: two new classes must not take the same row), or each to its most similar one
  where fewer stored classes than new ones exist; each new class takes its match's row.
Rows of different tasks are not calibrated against each other (their norms grow with their own
fine-tuning), so every transferred row is rescaled to `prior_weight` times the norm that one
fine-tuning step on the new task's own support gives a zero head: the prior then counts as that many
steps of the task's own data. Biases start at zero: they are only defined up to a shift within a task.

The comparison fine-tunes the same way (full-batch SGD on the support, the model's lr) from four starts:
- cold: the run's own start for a task, with no neighbour's adaptation: its meta-trained weights and a
  zero head (the head's first step is a prototype classifier: a strong baseline);
- cold-random: the same weights with a random head, as nn.Linear draws one (the usual fine-tuning start);
- warm: the k nearest stored tasks' adapted weights, as above;
- warm-random: k random stored tasks, same transfer: the control. Warm beating it is what shows that
  similarity, not merely having a library, carries the gain.
The matching lets any k tasks lend rows, so the control is only weak when its k random tasks rarely
hold the new task's classes: a library of many groups and a small k. With a library of two alphabets and
k = 20 of 200 tasks (the study's first setting), 20 random tasks held 69% of a new task's classes and the
nearest 77%, and warm-random did as well as warm. `same_class` records, per task, the share of rows each
warm start took from the new class itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from core.episodes import EpisodeSpec
from core.evaluation import mean_ci95
from core.learners.functional import Weights
from core.tasks.features import ImageFeatures
from core.tasks.models import TaskModel, accuracy, adapt, mean_body, task_data

STARTS = ("cold", "cold-random", "warm", "warm-random")
LENDS = ("both", "backbone", "head")  # what a warm start takes from the stored tasks (an ablation: which part carries the gain)


@dataclass(frozen=True)
class StoredTask:
    """A solved task: its spec, normalised prototypes (n_way, e) and its adapted weights (head.weight (n_way, d), ...)."""

    spec: EpisodeSpec
    prototypes: torch.Tensor
    weights: Weights


def solve_tasks(model: TaskModel, features: ImageFeatures, specs: Sequence[EpisodeSpec], steps: int = 100) -> list[StoredTask]:
    """Fine-tune the model's cold start on each task's support for `steps` steps and keep it with the prototypes."""
    stored = []
    for spec in specs:
        x, y = model.data(spec.support)
        weights = adapt(model, model.cold(len(spec.class_ids)), x, y, steps)[-1]
        stored.append(StoredTask(spec, features.prototypes(spec), {k: v.cpu() for k, v in weights.items()}))
    return stored


def transfer_head(prototypes: torch.Tensor, neighbours: Sequence[StoredTask], scale: float = 1.0) -> Weights:
    """New head (n_way, e): each new class takes the row of its matched stored class (see the module
    docstring), rescaled to norm `scale`. prototypes: the new task's normalised class prototypes (n_way, e)."""
    _, stored_protos, rows = pooled_classes(neighbours)
    match = torch.as_tensor(match_classes(prototypes, stored_protos))
    return {"head.weight": F.normalize(rows[match], dim=1) * scale, "head.bias": rows.new_zeros(prototypes.shape[0])}


def match_classes(prototypes: torch.Tensor, stored: torch.Tensor) -> list[int]:
    """For each new class (rows of prototypes (n_way, e)), the index of its match among the stored class prototypes
    (M, e): one-to-one by cosine (Hungarian), or each its most similar where fewer are stored than new."""
    similarity = (prototypes @ stored.T).numpy()  # (n_way, M)
    if similarity.shape[1] >= similarity.shape[0]:
        return linear_sum_assignment(similarity, maximize=True)[1].tolist()
    return similarity.argmax(1).tolist()


def lent_classes(prototypes: torch.Tensor, neighbours: Sequence[StoredTask]) -> list[int]:
    """The dataset class id whose head row each new class takes (compare with the task's class_ids)."""
    ids, stored_protos, _ = pooled_classes(neighbours)
    return [ids[i] for i in match_classes(prototypes, stored_protos)]


def pooled_classes(tasks: Sequence[StoredTask]) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """The distinct classes of `tasks`: their ids (M,), normalised mean prototypes (M, e) and mean normalised head rows (M, e)."""
    if not tasks:
        raise ValueError("a warm start needs at least one stored task; store tasks first or use the cold start")
    protos: dict[int, list[torch.Tensor]] = {}
    rows: dict[int, list[torch.Tensor]] = {}
    for t in tasks:
        w = F.normalize(t.weights["head.weight"], dim=1)
        for i, c in enumerate(t.spec.class_ids):
            protos.setdefault(c, []).append(t.prototypes[i])
            rows.setdefault(c, []).append(w[i])
    mean = lambda parts: F.normalize(torch.stack([torch.stack(v).mean(0) for v in parts.values()]), dim=1)
    return list(protos), mean(protos), mean(rows)


def step_scale(model: TaskModel, start: Weights, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean row norm of `start`'s zero head after one SGD step on (x, y): the size of one step of the task's own data."""
    return adapt(model, start, x, y, 1)[1]["head.weight"].norm(dim=1).mean().item()


def warm_start(
    model: TaskModel,
    spec: EpisodeSpec,
    prototypes: torch.Tensor,
    neighbours: Sequence[StoredTask],
    prior_weight: float,
    lend: str = "both",
) -> Weights:
    """The new task's start: the neighbours' mean adapted backbone (if the model has one) and their matched head
    rows; lend 'backbone' keeps the cold (zero) head, 'head' the cold backbone (LENDS)."""
    if lend not in LENDS:
        raise ValueError(f"unknown lend '{lend}'; use one of: {', '.join(LENDS)}")
    start = model.cold(len(spec.class_ids))
    device = start["head.weight"].device
    if lend != "head":
        start |= {k: v.to(device) for k, v in mean_body([t.weights for t in neighbours]).items()}
    if lend == "backbone":
        return start
    scale = prior_weight * step_scale(model, start, *model.data(spec.support))
    return {**start, **{k: v.to(device) for k, v in transfer_head(prototypes, neighbours, scale).items()}}


def random_head(n_way: int, dim: int, generator: torch.Generator) -> Weights:
    """A head drawn as nn.Linear draws one: U(−1/√dim, 1/√dim)."""
    bound = dim**-0.5
    draw = lambda *shape: (torch.rand(*shape, generator=generator) * 2 - 1) * bound
    return {"head.weight": draw(n_way, dim), "head.bias": draw(n_way)}


@dataclass(frozen=True)
class StartComparison:
    """Query accuracy of each new task after each number of fine-tuning steps, for each start.

    accuracy[start][i][j]: start in STARTS, i indexes `steps`, j the new tasks.
    """

    steps: list[int]
    accuracy: dict[str, list[list[float]]]
    settings: dict
    same_class: dict[str, list[float]] = field(default_factory=dict)  # warm start -> per task, share of rows lent by the same class

    def curve(self, start: str) -> tuple[list[float], list[float]]:
        """Mean accuracy and 95% CI half-width at each step."""
        pairs = [mean_ci95(torch.tensor(a)) for a in self.accuracy[start]]
        return [m for m, _ in pairs], [c for _, c in pairs]

    def gain(self, start: str = "warm", over: str = "cold") -> tuple[list[float], list[float]]:
        """Paired difference start − over per task: mean and 95% CI at each step."""
        pairs = [mean_ci95(torch.tensor(a) - torch.tensor(b)) for a, b in zip(self.accuracy[start], self.accuracy[over], strict=True)]
        return [m for m, _ in pairs], [c for _, c in pairs]

    def to_dict(self) -> dict:
        curves = {s: dict(zip(("mean", "ci95"), self.curve(s), strict=True)) for s in self.accuracy}
        gains = {s: dict(zip(("mean", "ci95"), self.gain(s), strict=True)) for s in self.accuracy if s != "cold"}  # s − cold, paired
        control = dict(zip(("mean", "ci95"), self.gain("warm", "warm-random"), strict=True))
        same = {s: mean_ci95(torch.tensor(v))[0] for s, v in self.same_class.items() if v}
        return {
            "steps": self.steps, "curves": curves, "gains": gains, "warm_minus_random": control, "same_class_rows": same,
            "tasks": len(self.accuracy["cold"][0]), "settings": self.settings,
        }  # fmt: skip

    def table(self) -> str:
        """Plain-text table: one row per step, accuracy ± CI of each start and the warm − cold gain."""
        lines = ["steps  " + "  ".join(f"{s:>15}" for s in self.accuracy) + "      warm - cold"]
        curves, (gain, gain_ci) = {s: self.curve(s) for s in self.accuracy}, self.gain()
        for i, step in enumerate(self.steps):
            cells = "  ".join(f"{100 * curves[s][0][i]:6.2f} ± {100 * curves[s][1][i]:5.2f}" for s in self.accuracy)
            lines.append(f"{step:>5}  {cells}  {100 * gain[i]:+6.2f} ± {100 * gain_ci[i]:5.2f}")
        return "\n".join(lines)

    def control_lines(self) -> list[str]:
        """'warm - warm-random at S steps: +X ± Y' for each step: points of accuracy, paired 95% CI over the new tasks."""
        gain, ci = self.gain("warm", "warm-random")
        return [f"warm - warm-random at {s} steps: {100 * g:+.2f} ± {100 * c:.2f}" for s, g, c in zip(self.steps, gain, ci, strict=True)]


def compare_starts(
    model: TaskModel,
    features: ImageFeatures,
    library: Sequence[StoredTask],
    tasks: Sequence[EpisodeSpec],
    nearest: torch.Tensor,
    random: torch.Tensor,
    steps: Sequence[int] = (0, 1, 5, 10),
    prior_weight: float = 0.5,
    seed: int = 0,
    on_task: Callable[[int, int], None] | None = None,
    lend: str = "both",
) -> StartComparison:
    """Fine-tune each new task's model from every start in STARTS; accuracy on its queries after each of `steps`.

    nearest (m, k): the library indices each new task retrieved; random (m, k): the control's random draw
    (core.tasks.retrieval.random_neighbours). warm and warm-random go through the one function, warm_start,
    with the same k, prior weight, matching and fine-tuning: only the choice of stored tasks differs.
    """
    if nearest.shape != random.shape or nearest.shape[0] != len(tasks):
        raise ValueError(f"nearest {tuple(nearest.shape)} and random {tuple(random.shape)} must both be ({len(tasks)}, k)")
    steps = sorted(set(int(s) for s in steps))
    generator = torch.Generator().manual_seed(seed)
    accuracy_of: dict[str, list[list[float]]] = {s: [[] for _ in steps] for s in STARTS}
    same_class: dict[str, list[float]] = {"warm": [], "warm-random": []}
    for j, spec in enumerate(tasks):
        (xs, ys), (xq, yq) = task_data(model, spec)
        protos, cold = features.prototypes(spec), model.cold(len(spec.class_ids))
        head = random_head(*cold["head.weight"].shape, generator)
        lenders = {"warm": [library[i] for i in nearest[j].tolist()], "warm-random": [library[i] for i in random[j].tolist()]}
        starts = {
            "cold": cold,
            "cold-random": {**cold, **{key: v.to(cold[key].device) for key, v in head.items()}},
            **{name: warm_start(model, spec, protos, chosen, prior_weight, lend) for name, chosen in lenders.items()},
        }
        for name, chosen in lenders.items():
            lent = lent_classes(protos, chosen)
            same_class[name].append(sum(a == b for a, b in zip(lent, spec.class_ids, strict=True)) / len(lent))
        for name, start in starts.items():
            trajectory = adapt(model, start, xs, ys, steps[-1])
            for i, step in enumerate(steps):
                accuracy_of[name][i].append(accuracy(model, trajectory[step], xq, yq))
        if on_task:
            on_task(j + 1, len(tasks))
    settings = {
        "k": int(nearest.shape[1]), "lr": model.lr, "prior_weight": prior_weight, "lend": lend, "seed": seed, "stored_tasks": len(library),
        "model": model.describe,
    }  # fmt: skip
    return StartComparison(steps, accuracy_of, settings, same_class)
