"""Reptile (Nichol et al., 2018): move the start towards the weights each task's SGD reaches."""

from __future__ import annotations

import torch

from core.learners.functional import last
from core.learners.maml import MAML
from core.learners.scoring import infer_n_way


class Reptile(MAML):
    """Inner loop: `inner_steps` plain SGD steps of `inner_lr` on the support set (no graph kept).

    Outer update θ ← θ + ε(θ' − θ), fitted to the Trainer's backward() + optimizer.step(): the
    episode loss is the surrogate ½·Σ‖θ − θ'‖² with θ' held constant, whose gradient is θ − θ'.
    With TrainConfig.optimizer='sgd' the outer learning rate is ε (the Trainer's SGD adds Nesterov
    momentum); with Adam the step is the same direction, normalised per weight. The meta-batch average
    of the surrogates gives the mean of (θ − θ'ᵢ), Reptile's batched update. The head starts at zero
    in every task, so only the backbone is meta-learned. The logged loss is this surrogate, not a
    cross-entropy; accuracy is on the query set at the adapted weights.
    """

    name = "reptile"
    differentiable_inner_loop = False
    settings = ("backbone", "inner_steps", "inner_lr")  # nothing flows through its inner loop: first order is moot

    def episode_loss(self, support_x, support_y, query_x, query_y, n_way=None):
        """-> (surrogate, logits (q, n_way)); with a leading episode dim E, (surrogates (E,), logits (E, q, n_way))."""
        task = self.task(support_x, query_x, infer_n_way(support_y, n_way))
        adapted = last(self.adapt(task, support_y, track=False))
        with torch.no_grad():
            logits = task.logits(adapted, task.query)
        lead = support_x.dim() - 4
        surrogate = sum(0.5 * (p - adapted[k].detach()).pow(2).flatten(lead).sum(-1) for k, p in self.backbone.named_parameters())
        return surrogate, logits
