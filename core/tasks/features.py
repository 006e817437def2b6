"""What every task-level tool reads: a frozen learner's image embeddings and a linear head fitted on them.

Embeddings are L2-normalised so that heads, prototypes and cosines do not depend on the backbone's
scale, and computed once per image (lazily, by dataset index).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from core.data.base import ImageSet
from core.episodes import Episode, EpisodeSpec, to_float
from core.learners import MetaLearner
from core.learners.functional import Weights, detached, head_logits, sgd_step, unroll, zero_head
from core.learners.scoring import prototypes

Task = Episode | EpisodeSpec


class ImageFeatures:
    """Normalised embeddings (n, e) of a dataset's images under a frozen learner, computed on first use."""

    def __init__(self, learner: MetaLearner, image_set: ImageSet, batch: int = 512):
        self.learner, self.image_set, self.batch = learner.eval(), image_set, batch
        self.device = next(learner.parameters(), torch.empty(0)).device
        self._z: torch.Tensor | None = None  # (n, e), rows valid where self._done
        self._done = torch.zeros(image_set.images.shape[0], dtype=torch.bool)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Float images (n, c, h, w) -> normalised embeddings (n, e)."""
        return F.normalize(
            torch.cat([self.learner.embed(x[i : i + self.batch].to(self.device)) for i in range(0, x.shape[0], self.batch)]), dim=1
        ).cpu()

    def rows(self, index: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Embeddings (m, e) of dataset images `index` (m,)."""
        index = torch.as_tensor(index, dtype=torch.int64)
        todo = index[~self._done[index]].unique()
        if todo.numel():
            z = self.embed(to_float(self.image_set.images[todo], self.image_set.normalisation))
            if self._z is None:
                self._z = z.new_zeros(self._done.numel(), z.shape[1])
            self._z[todo], self._done[todo] = z, True
        return self._z[index]

    def support(self, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
        """Support embeddings (s, e) and labels (s,) in 0..n_way-1."""
        if isinstance(task, Episode):
            return self.embed(task.support_x), task.support_y.cpu()
        return self.part(task.support)

    def query(self, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
        """Query embeddings (q, e) and labels (q,)."""
        if isinstance(task, Episode):
            return self.embed(task.query_x), task.query_y.cpu()
        return self.part(task.query)

    def prototypes(self, task: Task) -> torch.Tensor:
        """Normalised class means of the support (n_way, e), row i for episode label i."""
        z, y = self.support(task)
        return F.normalize(prototypes(z, y, len(task.class_ids)), dim=1)

    def part(self, rows: tuple[tuple[int, ...], ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings (m, e) of the images rows[c] of each class c, and their labels (m,) c."""
        index = [i for r in rows for i in r]
        labels = torch.arange(len(rows)).repeat_interleave(torch.tensor([len(r) for r in rows]))
        return self.rows(index), labels


def cold_head(n_way: int, dim: int) -> Weights:
    """The cold start: a zero head (n_way, dim), whose first step gives a prototype-like classifier."""
    return {k: v.detach() for k, v in zero_head(n_way, dim, torch.empty(0)).items()}


def finetune(start: Weights, z: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> list[Weights]:
    """Full-batch SGD on cross-entropy of a linear head from `start`: the heads after 0..steps steps.

    z: features (s, e); y: labels (s,); heads {'head.weight': (n_way, e), 'head.bias': (n_way,)}.
    """
    loss_fn = lambda w: F.cross_entropy(head_logits(w, z), y)
    rule = lambda w, grads, loss, state: (sgd_step(w, grads, lr), state)
    return [{k: v.detach() for k, v in w.items()} for w in unroll(detached(start), loss_fn, steps, rule, create_graph=False, track=False)]


def head_accuracy(head: Weights, z: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows of z (q, e) the head classifies as y (q,)."""
    return (head_logits(head, z).argmax(1) == y).float().mean().item()
