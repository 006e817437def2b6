"""ANIL (Raghu et al., 2020): only the head adapts; the backbone is meta-learned in the outer loop."""

from __future__ import annotations

import torch

from core.learners.functional import FastWeightLearner, Task, head_logits


class ANIL(FastWeightLearner):
    """Features computed once per task; `inner_steps` SGD steps on the zero-initialised head only.

    The outer loss (query loss after adaptation) trains the backbone through the features, with
    second-order terms through the head's inner gradients unless config.first_order.
    """

    name = "anil"

    def task(self, support_x: torch.Tensor, query_x: torch.Tensor, n_way: int) -> Task:
        # two passes, not one: BatchNorm normalises support and query separately, as in MAML
        return Task(self.initial_head(n_way, support_x), head_logits, self.embed_episodes(support_x), self.embed_episodes(query_x))
