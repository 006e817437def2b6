"""The training runs of this process, by id: how a refreshed browser finds the run it was watching.

Holds no torch: the dashboard's sidebar asks it on every page, the first page included, before the
engine is imported.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.errors import UserError

if TYPE_CHECKING:
    from core.training.background import TrainingRun

_RUNS: dict[str, TrainingRun] = {}
_LOCK = threading.Lock()


class RunError(UserError):
    """A run cannot be started or controlled as asked."""


def register(make: Callable[[], TrainingRun]) -> TrainingRun:
    """Build a run with `make` and register it, unless one is still training (RunError): one run at a time."""
    with _LOCK:
        busy = [r for r in _RUNS.values() if not r.snapshot().done]
        if busy:
            raise RunError(f"run {busy[0].id} is still training; stop it or wait for it to finish")
        run = make()
        _RUNS[run.id] = run
        return run


def get_run(run_id: str) -> TrainingRun | None:
    with _LOCK:
        return _RUNS.get(run_id)


def active_run() -> TrainingRun | None:
    """The run training now in this process, if any."""
    with _LOCK:
        return next((r for r in _RUNS.values() if not r.snapshot().done), None)


def latest_run() -> TrainingRun | None:
    """The most recently started run of this process (active or not)."""
    with _LOCK:
        return next(reversed(_RUNS.values()), None)
