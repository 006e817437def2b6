"""What a task's model is when the task-level tools fine-tune one: the weights that adapt, where they start
and how they score images.

- HeadModel: a linear head on a frozen learner's normalised features (works for every learner);
- NetworkModel: the learner's whole network, backbone and head, adapted the way its own inner loop adapts
  it (MAML, first-order MAML, Reptile: every weight, SGD at config.inner_lr).
Either way the cold start is the run's own starting point for a task: its meta-trained weights and a
zero head, the start the learner itself adapts from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F

from core.episodes import EpisodeSpec, to_float
from core.learners import MetaLearner
from core.learners.functional import HEAD_KEYS, Weights, detached, head_logits, sgd_step, unroll
from core.tasks.features import ImageFeatures, cold_head

MODELS = ("auto", "head", "network")


class TaskModel(Protocol):
    lr: float  # fine-tuning step size
    describe: str  # one line saying what adapts and where the cold start is

    def cold(self, n_way: int) -> Weights: ...

    def data(self, rows: tuple[tuple[int, ...], ...]) -> tuple[torch.Tensor, torch.Tensor]: ...

    def logits(self, weights: Weights, x: torch.Tensor) -> torch.Tensor: ...


class HeadModel:
    """A linear head (n_way, e) on frozen normalised features; inputs are the features (s, e)."""

    def __init__(self, features: ImageFeatures, lr: float):
        self.features, self.lr = features, lr
        self.describe = f"a linear head on the frozen learner's features, SGD lr {lr:g}; cold start: a zero head"

    def cold(self, n_way: int) -> Weights:
        return cold_head(n_way, self.features.rows([0]).shape[1])

    def data(self, rows: tuple[tuple[int, ...], ...]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features.part(rows)

    def logits(self, weights: Weights, x: torch.Tensor) -> torch.Tensor:
        return head_logits(weights, x)


class NetworkModel:
    """The whole network of a learner with `logits_at` (MAML family); inputs are images (s, c, h, w)."""

    def __init__(self, learner: MetaLearner):
        if not hasattr(learner, "logits_at"):
            raise ValueError(f"a {learner.name} learner does not adapt its whole network; use the head model")
        self.learner = learner.eval()
        self.lr = float(learner.config.inner_lr)
        self.describe = (
            f"the whole {learner.name} network (backbone + head), SGD lr {self.lr:g} as its inner loop; "
            "cold start: the meta-trained weights with a zero head"
        )

    def bind(self, features: ImageFeatures) -> NetworkModel:
        """Read images from the dataset `features` embeds (the same frozen learner)."""
        self.features, self.image_set, self.device = features, features.image_set, features.device
        return self

    def cold(self, n_way: int) -> Weights:
        backbone = {k: v.detach() for k, v in self.learner.backbone.named_parameters()}
        return {**backbone, **cold_head(n_way, self.learner.feature_dim)}

    def data(self, rows: tuple[tuple[int, ...], ...]) -> tuple[torch.Tensor, torch.Tensor]:
        index = [i for r in rows for i in r]
        labels = torch.arange(len(rows)).repeat_interleave(torch.tensor([len(r) for r in rows]))
        return to_float(self.image_set.images[index], self.image_set.normalisation).to(self.device), labels.to(self.device)

    def logits(self, weights: Weights, x: torch.Tensor) -> torch.Tensor:
        return self.learner.logits_at(weights, x)


def make_task_model(kind: str, learner: MetaLearner, features: ImageFeatures, head_lr: float) -> TaskModel:
    """`kind` in MODELS; auto: the whole network where the learner adapts it, else a head on its features."""
    if kind not in MODELS:
        raise ValueError(f"unknown task model '{kind}'; use one of: {', '.join(MODELS)}")
    if kind == "network" or (kind == "auto" and hasattr(learner, "logits_at")):
        return NetworkModel(learner).bind(features)
    return HeadModel(features, head_lr)


def adapt(model: TaskModel, start: Weights, x: torch.Tensor, y: torch.Tensor, steps: int) -> list[Weights]:
    """Full-batch SGD on cross-entropy of (x, y) from `start`: the weights after 0..steps steps."""
    loss_fn = lambda w: F.cross_entropy(model.logits(w, x), y)
    rule = lambda w, grads, loss, state: (sgd_step(w, grads, model.lr), state)
    return [{k: v.detach() for k, v in w.items()} for w in unroll(detached(start), loss_fn, steps, rule, create_graph=False, track=False)]


@torch.no_grad()
def accuracy(model: TaskModel, weights: Weights, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of x the model at `weights` classifies as y."""
    return (model.logits(weights, x).argmax(1) == y).float().mean().item()


def task_data(model: TaskModel, spec: EpisodeSpec) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((support x, y), (query x, y)) of a task, as the model reads them."""
    return model.data(spec.support), model.data(spec.query)


def mean_body(weights: Sequence[Weights]) -> Weights:
    """The mean of every non-head weight over `weights` (empty for a head model)."""
    return {k: torch.stack([w[k] for w in weights]).mean(0) for k in weights[0] if k not in HEAD_KEYS}
