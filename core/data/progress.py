"""A terminal view of a dataset's first decode: one tqdm bar per stage (the CLI's Hooks.progress)."""

from __future__ import annotations

import sys

from tqdm import tqdm

from core.data.cache import Hooks


class LoadBars:
    """Hooks.progress as tqdm bars on stderr: "decoding", "hashing sources", "checking the cache"."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage or self.bar is None:
            self.close()
            unit = "img" if stage == "decoding" else ("file" if stage == "hashing sources" else "chunk")
            self.bar, self.stage = tqdm(total=total, desc=stage, unit=unit, file=sys.stderr, dynamic_ncols=True, mininterval=0.5), stage
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar, self.stage = None, ""


def terminal_hooks() -> Hooks:
    """Progress bars for the first decode and notices printed as they happen, both on stderr."""
    return Hooks(progress=LoadBars(), notify=lambda message: print(f"notice: {message}", file=sys.stderr))
