"""A run that diverges stops honestly: a non-finite loss or weight ends it as failed, with the reason.

Checked where it costs no extra device sync: the loss at each metric record (already a Python float there),
and the weights before each checkpoint is written, so every checkpoint on disk holds finite values and the
last one is the last good state. Listed before the store's callback, so it sees a checkpoint step first.
"""

from __future__ import annotations

import math

import torch

from core.config import TrainConfig
from core.errors import UserError
from core.training.live import Record
from core.training.trainer import Callback, Trainer


class DivergedError(UserError):
    """Training produced a loss or weight that is not a finite number."""


def first_non_finite(module: torch.nn.Module) -> str | None:
    """The name of the first floating-point weight or buffer holding NaN or infinity, or None (one device sync)."""
    tensors = [(name, t) for name, t in module.state_dict().items() if t.is_floating_point()]
    if not tensors:
        return None
    finite = torch.stack([torch.isfinite(t).all() for _, t in tensors]).cpu()
    bad = (~finite).nonzero()
    return tensors[int(bad[0])][0] if len(bad) else None


class FiniteGuard(Callback):
    """Raises DivergedError (which fails the run) at the first non-finite loss or weight."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.last_good_step = 0  # the last step whose weights were checked finite

    def on_log(self, trainer: Trainer, record: Record) -> None:
        if not math.isfinite(record["loss"]):
            self._fail(trainer, f"the loss became {record['loss']} at step {record['step']}")

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if step % self.config.checkpoint_every == 0:  # the store writes a checkpoint of this step next
            self._check_weights(trainer, step)

    def on_end(self, trainer: Trainer, status: str) -> None:
        self._check_weights(trainer, trainer.step)  # the store saves the final state next

    def _check_weights(self, trainer: Trainer, step: int) -> None:
        name = first_non_finite(trainer.learner)
        if name is not None:
            self._fail(trainer, f"weight {name} became NaN or infinite by step {step}")
        self.last_good_step = step

    def _fail(self, trainer: Trainer, what: str) -> None:
        kept = f"the checkpoint of step {self.last_good_step} is the last good one" if self.last_good_step else "no checkpoint was kept"
        setting = "inner_lr" if "inner_lr" in trainer.learner.settings else "lr"
        lower = "the inner or outer learning rate" if setting == "inner_lr" else "the learning rate"
        raise DivergedError(f"training diverged: {what}; lower {lower} and train again ({kept})", setting)
