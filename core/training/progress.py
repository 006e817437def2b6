"""A terminal progress bar as a training callback (the CLI's view of a run)."""

from __future__ import annotations

import sys

from tqdm import tqdm

from core.training.trainer import Callback, Record, Trainer


class ProgressBar(Callback):
    """tqdm bar on stderr with live loss, training accuracy and the last validation accuracy.

    It counts optimizer steps (`--episodes`); with a meta-batch of E episodes a step is E episodes, and the bar says
    so (steps per second, not episodes)."""

    def __init__(self, total: int, meta_batch: int = 1):
        unit, desc = ("ep", None) if meta_batch == 1 else ("step", f"steps of {meta_batch} episodes")
        self.bar = tqdm(total=total, file=sys.stderr, unit=unit, desc=desc, dynamic_ncols=True, mininterval=0.5)
        self.val = ""

    def on_log(self, trainer: Trainer, record: Record) -> None:
        self.bar.update(record["step"] - self.bar.n)
        postfix = f"loss {record['loss']:.3f}  acc {100 * record['train_acc']:.1f}%{self.val}"
        self.bar.set_postfix_str(postfix, refresh=False)

    def on_validation(self, trainer: Trainer, record: Record) -> None:
        self.val = f"  val {100 * record['val_acc']:.1f}%"

    def on_end(self, trainer: Trainer, status: str) -> None:
        self.bar.close()
