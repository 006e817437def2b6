"""MAML (Finn et al., 2017) and first-order MAML: every weight adapts in the inner loop."""

from __future__ import annotations

import torch

from core.learners.functional import HEAD_KEYS, FastWeightLearner, Task, Weights, head_logits
from core.models.ghost import call_backbone


class MAML(FastWeightLearner):
    """Backbone + zero head; `inner_steps` SGD steps of `inner_lr` on all weights per task.

    The outer loss is the query loss at the adapted weights; with config.first_order=False its
    gradient includes the second-order terms (differentiating through the inner gradients).
    """

    name = "maml"

    def task(self, support_x: torch.Tensor, query_x: torch.Tensor, n_way: int) -> Task:
        lead = support_x.shape[:-4]  # () for one episode, (E,) for E stacked: each its own view of the start
        backbone = {k: p.expand(*lead, *p.shape) if lead else p for k, p in self.backbone.named_parameters()}
        return Task({**backbone, **self.initial_head(n_way, support_x)}, self.logits_at, support_x, query_x)

    def logits_at(self, weights: Weights, x: torch.Tensor) -> torch.Tensor:
        """Images (n, c, h, w) -> logits (n, n_way) of the model at fast weights `weights`; images
        (E, n, c, h, w) with weights (E, *shape) -> (E, n, n_way), all E episodes in one backbone pass."""
        backbone = {k: v for k, v in weights.items() if k not in HEAD_KEYS}
        if x.dim() == 4:
            return head_logits(weights, call_backbone(self.backbone, x, weights=backbone))
        if x.shape[0] == 1:  # one stacked episode: its weights in the layers' own shapes, the plain path
            return head_logits(weights, call_backbone(self.backbone, x[0], weights={k: v[0] for k, v in backbone.items()}).unsqueeze(0))
        return head_logits(weights, call_backbone(self.backbone, x.flatten(0, 1), x.shape[0], backbone).unflatten(0, x.shape[:2]))


class FOMAML(MAML):
    """First-order MAML: the inner gradients are treated as constants, so the outer gradient is the
    query-loss gradient at the adapted weights (cheaper; the same as MAML with first_order=True)."""

    name = "fomaml"
    always_first_order = True
    settings = ("backbone", "inner_steps", "inner_lr")  # always first order: no choice to offer
