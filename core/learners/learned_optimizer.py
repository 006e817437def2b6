"""A learned inner-loop optimizer (after Andrychowicz et al., 2016; Ravi & Larochelle, 2017), and the
plain-SGD fine-tuning it is compared with.

Both adapt a zero-initialised head on the features of a meta-learned backbone, as ANIL does: a
coordinate-wise LSTM over every weight of a Conv-4 would not train on a CPU in minutes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import torch
from torch import nn

from core.learners.anil import ANIL
from core.learners.functional import UpdateRule, Weights, add_flat_step, flatten, sgd_step

GRADIENT_SCALE_P = 10.0  # Andrychowicz et al.'s p: magnitudes below e^-p are read linearly
DIRECT_STEP_SCALE = 0.1  # keeps the LSTM's direct step small next to the gradient step at first


def preprocess_gradient(x: torch.Tensor, p: float = GRADIENT_SCALE_P) -> torch.Tensor:
    """Andrychowicz et al.'s input scaling, (n,) -> (n, 2): (log|x| / p, sign x) where |x| ≥ e^-p,
    else (−1, e^p · x). Magnitudes spanning many decades become comparable LSTM inputs."""
    big = x.abs() >= math.exp(-p)
    magnitude = torch.where(big, x.abs().clamp_min(1e-38).log() / p, torch.full_like(x, -1.0))
    direction = torch.where(big, x.sign(), math.exp(p) * x)
    return torch.stack([magnitude, direction], -1)


class CoordinateLSTM(nn.Module):
    """One small LSTM applied to every coordinate separately (shared weights, per-coordinate state).

    Input per coordinate: the preprocessed gradient and the preprocessed loss (4 numbers). Output:
    a log step size a and a direct step b, giving the update −exp(a)·g + 0.1·b. The step size plays
    Ravi & Larochelle's input gate, b Andrychowicz's direct output. The output layer starts at zero
    weights with biases (log lr, 0), so a new rule is exactly SGD with step lr: meta-training starts
    from the baseline and can only move away from it where that lowers the query loss.
    """

    def __init__(self, hidden: int, lr: float):
        super().__init__()
        self.cell = nn.LSTMCell(4, hidden)
        self.out = nn.Linear(hidden, 2)
        self.reset_to_sgd(lr)

    @torch.no_grad()
    def reset_to_sgd(self, lr: float) -> None:
        """Make the rule output exactly −lr·g, whatever the LSTM's state."""
        self.out.weight.zero_()
        self.out.bias.copy_(torch.tensor([math.log(lr), 0.0]))

    def forward(self, grad: torch.Tensor, loss: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """grad (n,), loss () -> (update (n,), new state); or per episode, grad (E, n), loss (E,) -> (E, n).
        The LSTM reads detached inputs (as in both papers); the −exp(a)·g term keeps g's graph, so
        second-order terms flow where g has them."""
        loss_features = preprocess_gradient(loss.detach().unsqueeze(-1)).expand(*grad.shape, 2)  # each coordinate its episode's loss
        features = torch.cat([preprocess_gradient(grad.detach()), loss_features], -1).flatten(0, -2)  # (coordinates, 4)
        h, c = self.cell(features, state)
        log_lr, direct = self.out(h).view(*grad.shape, 2).unbind(-1)
        return -log_lr.exp() * grad + DIRECT_STEP_SCALE * direct, (h, c)


class LearnedOptimizer(ANIL):
    """ANIL whose inner steps are taken by a meta-learned CoordinateLSTM (hidden size config.hidden),
    meta-trained with the backbone by backpropagating the query loss through the unrolled inner loop."""

    name = "learned_optimizer"
    settings = ("backbone", "inner_steps", "inner_lr", "first_order", "hidden")

    def __init__(self, config, in_channels: int, image_size: int, backbone: nn.Module | None = None):
        super().__init__(config, in_channels, image_size, backbone)
        self.rule = CoordinateLSTM(config.hidden, config.inner_lr)

    def update(self, weights: Weights, grads: list[torch.Tensor], loss: torch.Tensor, state: Any) -> tuple[Weights, Any]:
        lead = loss.dim()  # 0: one episode; 1: loss (E,) of E stacked episodes, each with its own coordinates
        step, state = self.rule(flatten(grads, lead), loss, state)
        return add_flat_step(weights, step, lead), state

    def sgd_update(self, weights: Weights, grads: list[torch.Tensor], loss: torch.Tensor, state: Any) -> tuple[Weights, Any]:
        """The baseline rule from the same start: plain SGD with config.inner_lr."""
        return sgd_step(weights, grads, self.config.inner_lr), state

    def adapt_trace(self, support_x, support_y, query_x, query_y, n_way=None, update: UpdateRule | str | None = None):
        """As FastWeightLearner.adapt_trace; update='sgd' traces plain SGD from the same backbone and head instead."""
        if update == "sgd":
            update = self.sgd_update
        elif update == "learned":
            update = None
        elif isinstance(update, str):
            raise ValueError(f"unknown update rule '{update}'; use 'learned' or 'sgd'")
        return super().adapt_trace(support_x, support_y, query_x, query_y, n_way, update)


class FineTune(ANIL):
    """The baseline: fine-tune the zero head with plain SGD (config.inner_lr, config.inner_steps).

    Always first order: the outer loss trains the backbone on the features but never differentiates
    the fine-tuning itself. `from_learner` gives the same start as a trained learner, for comparisons.
    """

    name = "finetune"
    family = "baseline"
    always_first_order = True
    settings = ("backbone", "inner_steps", "inner_lr")

    @classmethod
    def from_learner(cls, learner: ANIL) -> FineTune:
        """A FineTune with a copy of `learner`'s backbone and the same config (steps, lr)."""
        config = dataclasses.replace(learner.config, method=cls.name)
        return cls(config, learner.in_channels, learner.image_size, copy.deepcopy(learner.backbone)).train(learner.training)
