"""Warm start: a new task's linear head initialised from the heads adapted on its most similar stored tasks.

Each stored task keeps its class prototypes and the head fine-tuned on its support. For a new task the
k nearest stored tasks (by task embedding) lend their head rows:
- their classes are pooled by dataset class id (a class met in several stored tasks gets the mean of
  its normalised prototypes and of its normalised rows);
- the new task's classes are matched one-to-one to the pooled classes by cosine similarity of
  prototypes (Hungarian assignment: the classes of a task are distinct, so two new classes must not
  take the same row), or each to its most similar one where fewer stored classes than new ones exist;
- each new class takes its match's row, whatever label it had in its own task.
Rows of different tasks are not calibrated against each other (their norms grow with their own
fine-tuning), so every transferred row is rescaled to `prior_weight` times the norm that one
fine-tuning step on the new task's own support gives a zero head: the prior then counts as that many
steps of the task's own data. Biases start at zero: they are only defined up to a shift within a task.

The comparison fine-tunes the same way (full-batch SGD on the support, same lr) from four starts:
- cold: a zero head (its first step is a prototype classifier: a strong baseline);
- cold-random: a random head, as nn.Linear initialises one (the usual fine-tuning start);
- warm: the k nearest stored tasks, as above;
- warm-random: k random stored tasks, same transfer: the control. Warm beating it is what shows that
  similarity, not merely having a library, carries the gain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from core.episodes import EpisodeSpec
from core.evaluation import mean_ci95
from core.learners.functional import Weights
from core.tasks.features import ImageFeatures, cold_head, finetune, head_accuracy
from core.tasks.similarity import nearest_tasks

STARTS = ("cold", "cold-random", "warm", "warm-random")


@dataclass(frozen=True)
class StoredTask:
    """A solved task: its spec, normalised prototypes (n_way, e) and its adapted head."""

    spec: EpisodeSpec
    prototypes: torch.Tensor
    head: Weights


def solve_tasks(features: ImageFeatures, specs: Sequence[EpisodeSpec], steps: int = 100, lr: float = 5.0) -> list[StoredTask]:
    """Fine-tune a zero head on each task's support for `steps` steps and keep it with the prototypes."""
    stored = []
    for spec in specs:
        z, y = features.support(spec)
        head = finetune(cold_head(len(spec.class_ids), z.shape[1]), z, y, steps, lr)[-1]
        stored.append(StoredTask(spec, features.prototypes(spec), head))
    return stored


def transfer_head(prototypes: torch.Tensor, neighbours: Sequence[StoredTask], scale: float = 1.0) -> Weights:
    """New head (n_way, e): each new class takes the row of its matched stored class (see the module
    docstring), rescaled to norm `scale`. prototypes: the new task's normalised class prototypes (n_way, e)."""
    if not neighbours:
        raise ValueError("a warm start needs at least one stored task; store tasks first or use the cold start")
    stored_protos, rows = pooled_classes(neighbours)
    similarity = (prototypes @ stored_protos.T).numpy()  # (n_way, M)
    if similarity.shape[1] >= similarity.shape[0]:
        match = linear_sum_assignment(similarity, maximize=True)[1]
    else:
        match = similarity.argmax(1)
    return {"head.weight": F.normalize(rows[torch.as_tensor(match)], dim=1) * scale, "head.bias": rows.new_zeros(prototypes.shape[0])}


def pooled_classes(tasks: Sequence[StoredTask]) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct classes of `tasks`: normalised mean prototype (M, e) and mean normalised head row (M, e)."""
    protos: dict[int, list[torch.Tensor]] = {}
    rows: dict[int, list[torch.Tensor]] = {}
    for t in tasks:
        w = F.normalize(t.head["head.weight"], dim=1)
        for i, c in enumerate(t.spec.class_ids):
            protos.setdefault(c, []).append(t.prototypes[i])
            rows.setdefault(c, []).append(w[i])
    mean = lambda parts: F.normalize(torch.stack([torch.stack(v).mean(0) for v in parts.values()]), dim=1)
    return mean(protos), mean(rows)


def step_scale(z: torch.Tensor, y: torch.Tensor, n_way: int, lr: float) -> float:
    """Mean row norm of a zero head after one SGD step on (z (s, e), y (s,)): the size of one step of the task's own data."""
    return finetune(cold_head(n_way, z.shape[1]), z, y, 1, lr)[1]["head.weight"].norm(dim=1).mean().item()


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
        return {"steps": self.steps, "curves": curves, "gains": gains, "tasks": len(self.accuracy["cold"][0]), "settings": self.settings}

    def table(self) -> str:
        """Plain-text table: one row per step, accuracy ± CI of each start and the warm − cold gain."""
        lines = ["steps  " + "  ".join(f"{s:>15}" for s in self.accuracy) + "      warm - cold"]
        curves, (gain, gain_ci) = {s: self.curve(s) for s in self.accuracy}, self.gain()
        for i, step in enumerate(self.steps):
            cells = "  ".join(f"{100 * curves[s][0][i]:6.2f} ± {100 * curves[s][1][i]:5.2f}" for s in self.accuracy)
            lines.append(f"{step:>5}  {cells}  {100 * gain[i]:+6.2f} ± {100 * gain_ci[i]:5.2f}")
        return "\n".join(lines)


def compare_starts(
    features: ImageFeatures,
    library: Sequence[StoredTask],
    library_embeddings: torch.Tensor,
    tasks: Sequence[EpisodeSpec],
    task_embeddings: torch.Tensor,
    k: int = 10,
    steps: Sequence[int] = (0, 1, 5, 10),
    lr: float = 5.0,
    prior_weight: float = 0.5,
    seed: int = 0,
    on_task: Callable[[int, int], None] | None = None,
) -> StartComparison:
    """Fine-tune each new task's head from every start in STARTS; accuracy on its queries after each of `steps`.

    library_embeddings (t, d) and task_embeddings (m, d) are task embeddings of one kind.
    """
    steps = sorted(set(int(s) for s in steps))
    neighbours, _ = nearest_tasks(library_embeddings, task_embeddings, k)
    rng, generator = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    accuracy: dict[str, list[list[float]]] = {s: [[] for _ in steps] for s in STARTS}
    for j, spec in enumerate(tasks):
        (zs, ys), (zq, yq) = features.support(spec), features.query(spec)
        n_way, protos = len(spec.class_ids), features.prototypes(spec)
        scale = prior_weight * step_scale(zs, ys, n_way, lr)
        starts = {
            "cold": cold_head(n_way, zs.shape[1]),
            "cold-random": random_head(n_way, zs.shape[1], generator),
            "warm": transfer_head(protos, [library[i] for i in neighbours[j].tolist()], scale),
            "warm-random": transfer_head(protos, [library[i] for i in rng.choice(len(library), k, replace=False)], scale),
        }
        for name, head in starts.items():
            trajectory = finetune(head, zs, ys, steps[-1], lr)
            for i, step in enumerate(steps):
                accuracy[name][i].append(head_accuracy(trajectory[step], zq, yq))
        if on_task:
            on_task(j + 1, len(tasks))
    settings = {"k": k, "lr": lr, "prior_weight": prior_weight, "seed": seed, "stored_tasks": len(library)}
    return StartComparison(steps, accuracy, settings)
