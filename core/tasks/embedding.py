"""Task embeddings: one vector per task, so tasks can be compared, searched and plotted.

Two kinds:
- metric-based: the task's class prototypes (under a frozen learner) through a DeepSets encoder,
  rho(mean_c phi(p_c)), trained with a contrastive loss so that related tasks (sharing a group such as
  an Omniglot alphabet, or sharing a class where the data has no groups) come close;
- parameter-based: a linear head fine-tuned for a few steps from zero on the task's support, summarised
  by the Gram matrix of its class rows W^T W (e, e). Both are invariant to the order of the support
  images (prototypes are means) and to relabelling the classes (a mean over classes; a sum over class
  rows), so a task's embedding depends only on which images it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.episodes import EpisodeSpec
from core.learners.losses import contrastive_loss
from core.learners.scoring import pairwise_distance
from core.tasks.draw import ALL, TaskDrawer
from core.tasks.features import ImageFeatures, Task, cold_head, finetune


class TaskEncoder(nn.Module):
    """DeepSets over class prototypes: (b, n_way, e) -> normalised task embeddings (b, out_dim)."""

    def __init__(self, in_dim: int, hidden: int = 128, out_dim: int = 32):
        super().__init__()
        # LayerNorm first: prototypes share a large common part (all-positive pixels or ReLU features)
        # that would make every task look alike
        self.phi = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.rho = nn.Sequential(nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, protos: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.rho(self.phi(protos).mean(1)), dim=1)


def task_keys(spec: EpisodeSpec, drawer: TaskDrawer) -> set:
    """What makes two tasks related: their groups, or their classes where the data has one group."""
    if drawer.groups == [ALL]:
        return set(spec.class_ids)
    return {drawer.image_set.class_groups[c] for c in spec.class_ids}


def related_matrix(specs: Sequence[EpisodeSpec], drawer: TaskDrawer) -> torch.Tensor:
    """(t, t) bool: tasks i and j share a key (task_keys)."""
    keys = [task_keys(s, drawer) for s in specs]
    return torch.tensor([[bool(a & b) for b in keys] for a in keys])


def contrastive_batch(drawer: TaskDrawer, groups: int, per_group: int) -> list[EpisodeSpec]:
    """`per_group` tasks from each of `groups` random groups. Data with one group gets pseudo-groups:
    disjoint random sets of 2·n_way classes, so a batch holds tasks that share classes and tasks that share none."""
    if drawer.groups != [ALL]:
        chosen = drawer.rng.choice(drawer.groups, min(groups, len(drawer.groups)), replace=False)
        return [drawer.draw(str(g)) for g in chosen for _ in range(per_group)]
    n_way = drawer.shape.n_way
    classes = drawer.rng.permutation(drawer.members[ALL])
    size = max(n_way, min(2 * n_way, len(classes) // groups))
    sets = [classes[i : i + size] for i in range(0, len(classes) - size + 1, size)][:groups]
    return [drawer.draw(classes=drawer.rng.choice(s, n_way, replace=False).tolist()) for s in sets for _ in range(per_group)]


def train_task_encoder(
    encoder: TaskEncoder,
    features: ImageFeatures,
    drawer: TaskDrawer,
    steps: int = 300,
    groups: int = 4,
    per_group: int = 4,
    lr: float = 1e-3,
    margin: float = 1.0,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Contrastive training on drawn tasks: L = y·d + (1 − y)·max(0, m − d) over all task pairs of a batch,
    d the squared distance of the embeddings (in [0, 4]), y = related. Returns the loss of every step."""
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr)
    losses = []
    encoder.train()
    for step in range(steps):
        batch = contrastive_batch(drawer, groups, per_group)
        e = encoder(torch.stack([features.prototypes(t) for t in batch]))
        i, j = torch.triu_indices(len(batch), len(batch), 1)
        loss = contrastive_loss(pairwise_distance(e, e)[i, j], related_matrix(batch, drawer)[i, j], margin)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_step:
            on_step(step + 1, losses[-1])
    return losses


@torch.no_grad()
def metric_embeddings(encoder: TaskEncoder, features: ImageFeatures, tasks: Sequence[Task]) -> torch.Tensor:
    """(t, out_dim) metric-based embeddings; tasks may differ in n_way."""
    encoder.eval()
    return torch.cat([encoder(features.prototypes(t).unsqueeze(0)) for t in tasks])


def parameter_embeddings(features: ImageFeatures, tasks: Sequence[Task], steps: int = 5, lr: float = 5.0) -> torch.Tensor:
    """(t, e*e) parameter-based embeddings: W^T W of the head after `steps` SGD steps from zero, flattened
    and normalised (so cosines are Frobenius cosines). Summing over class rows makes it blind to the labels' order."""
    rows = []
    for t in tasks:
        z, y = features.support(t)
        w = finetune(cold_head(len(t.class_ids), z.shape[1]), z, y, steps, lr)[-1]["head.weight"]
        rows.append((w.T @ w).flatten())  # (e*e,)
    return F.normalize(torch.stack(rows), dim=1)
