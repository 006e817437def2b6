"""MAML (Finn et al., 2017) and first-order MAML: every weight adapts in the inner loop."""

from __future__ import annotations

import torch
from torch.func import functional_call

from core.learners.functional import HEAD_KEYS, FastWeightLearner, Task, Weights, head_logits


class MAML(FastWeightLearner):
    """Backbone + zero head; `inner_steps` SGD steps of `inner_lr` on all weights per task.

    The outer loss is the query loss at the adapted weights; with config.first_order=False its
    gradient includes the second-order terms (differentiating through the inner gradients).
    """

    name = "maml"

    def task(self, support_x: torch.Tensor, query_x: torch.Tensor, n_way: int) -> Task:
        start = {**dict(self.backbone.named_parameters()), **self.initial_head(n_way, support_x)}
        return Task(start, self.logits_at, support_x, query_x)

    def logits_at(self, weights: Weights, x: torch.Tensor) -> torch.Tensor:
        """Images (n, c, h, w) -> logits (n, n_way) of the model at fast weights `weights`."""
        backbone = {k: v for k, v in weights.items() if k not in HEAD_KEYS}
        return head_logits(weights, functional_call(self.backbone, backbone, (x,)))


class FOMAML(MAML):
    """First-order MAML: the inner gradients are treated as constants, so the outer gradient is the
    query-loss gradient at the adapted weights (cheaper; the same as MAML with first_order=True)."""

    name = "fomaml"
    always_first_order = True
    settings = ("backbone", "inner_steps", "inner_lr")  # always first order: no choice to offer
