"""The functional inner loop shared by the optimization-based learners (MAML, Reptile, ANIL, learned optimizer).

A task's model is a backbone plus a linear head, run with `torch.func.functional_call` over a dict
of fast weights; the inner loop takes gradient steps on the support loss and yields the weights
after each step. Nothing here writes to a module's own parameters or buffers.

Two choices hold for every learner built on FastWeightLearner:
- The head starts every task at zero, shape (n_way, d): any n_way works at test time, and since
  episode labels are arbitrary a meta-learned per-class row could carry no class knowledge anyway
  (for cross-entropy a learned row shared by all classes is the same thing: equal rows cancel in the
  softmax). The first inner step then makes row c proportional to (mean support feature − class c's
  features), a prototype-like classifier from step one (the "zeroing trick", Kao et al., 2022).
- BatchNorm always normalises with the statistics of the batch it sees (support, then query), in
  training and in evaluation alike, as in MAML's reference code; the backbone keeps no running
  statistics, so adapting cannot change a buffer and train() / eval() give the same logits.

E episodes batch: task() takes support and queries with a leading episode dim (E, n, c, h, w); every
fast weight then carries that dim, (E, *shape), one copy per episode; the backbone runs all E
episodes in one pass (grouped convolutions, each episode's own batch norm: core.models.ghost);
the inner loss is the sum of the episodes' losses, whose gradient for episode e's weights is that
episode's own gradient, so one autograd.grad takes E independent inner steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from core.learners.base import MetaLearner
from core.learners.scoring import episode_cross_entropy, infer_n_way
from core.models.backbones import make_backbone
from core.models.ghost import call_backbone

if TYPE_CHECKING:
    from core.config import LearnerConfig

Weights = dict[str, torch.Tensor]
# (weights, grads in the same order, support loss, rule state) -> (new weights, new state)
UpdateRule = Callable[[Weights, list[torch.Tensor], torch.Tensor, Any], tuple[Weights, Any]]

HEAD_KEYS = ("head.weight", "head.bias")


def use_batch_statistics(module: nn.Module) -> nn.Module:
    """Make every BatchNorm layer of `module` normalise with batch statistics and keep no running ones."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
    return module


def head_logits(weights: Weights, features: torch.Tensor) -> torch.Tensor:
    """Linear head: features (n, d) -> logits (n, n_way) with weights['head.weight'] (n_way, d), ['head.bias'] (n_way,);
    per episode with a leading dim E on all three."""
    weight, bias = weights["head.weight"], weights["head.bias"]
    if weight.dim() == 2:
        return F.linear(features, weight, bias)
    return torch.baddbmm(bias.unsqueeze(-2), features, weight.transpose(-1, -2))


def zero_head(n_way: int, dim: int, like: torch.Tensor, lead: tuple[int, ...] = ()) -> Weights:
    """A fresh head at zero (with leading episode dims `lead`), as leaves that require grad (so the inner loop can differentiate it)."""
    return {
        "head.weight": like.new_zeros(*lead, n_way, dim).requires_grad_(),
        "head.bias": like.new_zeros(*lead, n_way).requires_grad_(),
    }


def detached(weights: Weights) -> Weights:
    """Fresh leaves with the same values: the inner loop can differentiate them, nothing flows back."""
    return {k: v.detach().requires_grad_() for k, v in weights.items()}


def sgd_step(weights: Weights, grads: list[torch.Tensor], lr: float) -> Weights:
    """θ' = θ − lr·g for every fast weight."""
    return {k: w - lr * g for (k, w), g in zip(weights.items(), grads, strict=True)}


def flatten(tensors: list[torch.Tensor], lead: int = 0) -> torch.Tensor:
    """All tensors as one vector, in order: (n,), or (E, n) per episode when they have `lead`=1 leading episode dim."""
    return torch.cat([t.flatten(lead) for t in tensors], -1)


def add_flat_step(weights: Weights, step: torch.Tensor, lead: int = 0) -> Weights:
    """θ' = θ + step, with `step` (n,) (or (E, n) for `lead`=1) laid out as flatten(weights.values(), lead)."""
    out, offset = {}, 0
    for k, w in weights.items():
        size = w[(0,) * lead].numel()
        out[k] = w + step[..., offset : offset + size].view_as(w)
        offset += size
    return out


def unroll(
    weights: Weights,
    loss_fn: Callable[[Weights], torch.Tensor],
    steps: int,
    update: UpdateRule,
    create_graph: bool,
    track: bool,
) -> Iterator[Weights]:
    """Yield the fast weights before the first step and after each of `steps` inner steps.

    loss_fn gives a scalar, or one loss per episode (E,) for stacked episodes: the gradient of their
    sum is each episode's own gradient (its weights affect its loss only).

    track=True keeps the graph from `weights` through every step, so an outer loss can be
    differentiated through the loop (create_graph adds the second-order terms; without it the
    gradients are constants: first order). track=False cuts the graph after each step (evaluation,
    Reptile's inner loop); `weights` should then be leaves, e.g. from detached().
    """
    state = None
    yield weights
    for _ in range(steps):
        with torch.enable_grad():  # evaluation runs under no_grad, and adapting needs gradients
            loss = loss_fn(weights)
            total = loss.sum() if loss.dim() else loss
            grads = torch.autograd.grad(total, list(weights.values()), create_graph=create_graph and track, allow_unused=True)
        grads = [torch.zeros_like(w) if g is None else g for w, g in zip(weights.values(), grads, strict=True)]
        with torch.set_grad_enabled(track):
            weights, state = update(weights, grads, loss, state)
        if not track:
            weights = detached(weights)
        yield weights


def last(weights: Iterator[Weights]) -> Weights:
    """The final weights of an unroll."""
    for w in weights:
        final = w
    return final


@dataclass(frozen=True)
class Task:
    """One task ready to adapt: logits(weights, inputs) -> (n, n_way) reads `support` / `query`,
    which are images (MAML) or backbone features computed once (ANIL); `start` are the fast weights
    before the first inner step. For E stacked episodes all of them carry a leading dim E."""

    start: Weights
    logits: Callable[[Weights, torch.Tensor], torch.Tensor]
    support: torch.Tensor
    query: torch.Tensor


class FastWeightLearner(MetaLearner):
    """A backbone and a zero-initialised linear head, adapted to each task by an unrolled inner loop.

    Subclasses say which weights adapt (task()) and how a step is taken (update()); forward adapts on
    the support set and returns query logits (q, n_way), without touching the module's own state.
    """

    family = "optimization"
    settings = ("backbone", "inner_steps", "inner_lr", "first_order")
    embedding_only = False
    batched = True
    differentiable_inner_loop: ClassVar[bool] = True  # False: the outer loss never flows through the inner loop
    always_first_order: ClassVar[bool] = False

    def __init__(self, config: LearnerConfig, in_channels: int, image_size: int, backbone: nn.Module | None = None):
        super().__init__(config, in_channels, image_size)
        backbone = backbone if backbone is not None else make_backbone(config.backbone, in_channels, image_size)
        if not hasattr(backbone, "out_dim"):
            raise ValueError(f"{type(backbone).__name__} has no out_dim; a backbone must say its feature size")
        self.backbone = use_batch_statistics(backbone)
        self.feature_dim = int(backbone.out_dim)

    @property
    def first_order(self) -> bool:
        return self.config.first_order or self.always_first_order

    def embed(self, x: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        """Backbone features (n, d) of the meta-learned start, before any adaptation."""
        return call_backbone(self.backbone, x, episodes)

    def embed_episodes(self, x: torch.Tensor) -> torch.Tensor:
        """Images (n, c, h, w) -> start features (n, d); E episodes (E, n, c, h, w) -> (E, n, d) in one pass."""
        if x.dim() == 4:
            return self.embed(x)
        return self.embed(x.flatten(0, 1), x.shape[0]).unflatten(0, x.shape[:2])

    def initial_head(self, n_way: int, like: torch.Tensor) -> Weights:
        """The head each task starts from (zeros; see the module docstring); one per episode for
        images `like` (E, n, c, h, w)."""
        return zero_head(n_way, self.feature_dim, like, tuple(like.shape[:-4]))

    def task(self, support_x: torch.Tensor, query_x: torch.Tensor, n_way: int) -> Task:
        """Support (s, c, h, w) and queries (q, c, h, w), or E episodes (E, s, ...), (E, q, ...) -> the Task to adapt."""
        raise NotImplementedError

    def update(self, weights: Weights, grads: list[torch.Tensor], loss: torch.Tensor, state: Any) -> tuple[Weights, Any]:
        """One inner step; plain SGD with config.inner_lr unless a subclass learns the rule."""
        return sgd_step(weights, grads, self.config.inner_lr), state

    def adapt(self, task: Task, support_y: torch.Tensor, track: bool, update: UpdateRule | None = None) -> Iterator[Weights]:
        """Fast weights before and after each inner step on the task's support set."""
        track = track and self.differentiable_inner_loop
        start = task.start if track else detached(task.start)
        loss_fn = lambda w: episode_cross_entropy(task.logits(w, task.support), support_y)
        return unroll(start, loss_fn, self.config.inner_steps, update or self.update, not self.first_order, track)

    def forward(self, support_x, support_y, query_x, n_way=None):
        task = self.task(support_x, query_x, infer_n_way(support_y, n_way))
        # the outer loop differentiates through adaptation exactly when gradients are on (training)
        return task.logits(last(self.adapt(task, support_y, torch.is_grad_enabled())), task.query)

    def episode_loss(self, support_x, support_y, query_x, query_y, n_way=None):
        """Query cross-entropy after adaptation -> (loss, logits (q, n_way)); with a leading episode
        dim E on the inputs, (losses (E,), logits (E, q, n_way))."""
        logits = self(support_x, support_y, query_x, n_way)
        return episode_cross_entropy(logits, query_y), logits

    def episode_loss_batched(self, support_x, support_y, query_x, query_y, n_way):
        """E episodes adapted together: one backbone pass per inner step for all of them (see the module docstring)."""
        return self.episode_loss(support_x, support_y, query_x, query_y, n_way)

    @torch.no_grad()
    def adapt_trace(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
        n_way: int | None = None,
        update: UpdateRule | None = None,
    ) -> list[dict[str, float]]:
        """Loss and accuracy on query and support before and after each inner step (0..inner_steps):
        [{'step', 'loss', 'accuracy', 'support_loss', 'support_accuracy'}, ...]."""
        task = self.task(support_x, query_x, infer_n_way(support_y, n_way))
        trace = []
        for step, weights in enumerate(self.adapt(task, support_y, track=False, update=update)):
            q, s = task.logits(weights, task.query), task.logits(weights, task.support)
            trace.append(
                {
                    "step": step,
                    "loss": F.cross_entropy(q, query_y).item(),
                    "accuracy": (q.argmax(1) == query_y).float().mean().item(),
                    "support_loss": F.cross_entropy(s, support_y).item(),
                    "support_accuracy": (s.argmax(1) == support_y).float().mean().item(),
                }
            )
        return trace

    @torch.no_grad()
    def explain(self, support_x, support_y, query_x, n_way=None):
        """'logits' (q, n_way) after adaptation and 'initial_logits' before it."""
        task = self.task(support_x, query_x, infer_n_way(support_y, n_way))
        steps = list(self.adapt(task, support_y, track=False))
        return {"logits": task.logits(steps[-1], task.query), "initial_logits": task.logits(steps[0], task.query)}
