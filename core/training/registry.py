"""The background runs of this process: whose each is, which train now, and which wait their turn.

A server shared by a class trains at most `limit` runs at once (METASCOPE_MAX_TRAINING, default 1): a run
started while the slots are taken waits in a first-come queue and starts by itself when a slot frees, rather
than slowing everyone's run down. Each run has an owner (the dashboard's visitor id; None from Python), and
each owner has at most one run training or waiting at a time.

Holds no torch: the dashboard's sidebar asks it on every page, the first page included, before the engine
is imported.
"""

from __future__ import annotations

import heapq
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import UserError

if TYPE_CHECKING:
    from core.training.background import TrainingRun

MAX_TRAINING_ENV = "METASCOPE_MAX_TRAINING"  # how many runs this server trains at once
DEFAULT_MAX_TRAINING = 1


class RunError(UserError):
    """A run cannot be started or controlled as asked."""


def max_training_from_env() -> int:
    """$METASCOPE_MAX_TRAINING as a whole number >= 1 (default 1); RunError naming the variable otherwise."""
    raw = os.environ.get(MAX_TRAINING_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_TRAINING
    if not raw.isdigit() or int(raw) < 1:
        raise RunError(f"{MAX_TRAINING_ENV}={raw!r}: set it to a whole number of runs trained at once, 1 or more")
    return int(raw)


@dataclass(frozen=True)
class QueuePlace:
    """Where a waiting run stands: 1 = next to start; wait_s: estimated seconds until it starts (None: unknown yet)."""

    position: int
    waiting: int
    wait_s: float | None


class RunRegistry:
    """Runs by id, in the order they were submitted; at most `limit` train at once, the others queue.

    limit None reads $METASCOPE_MAX_TRAINING at each decision, so an operator's setting needs no restart.
    """

    def __init__(self, limit: int | None = None):
        self._limit = limit
        self._runs: dict[str, TrainingRun] = {}
        self._queue: list[TrainingRun] = []
        self._lock = threading.RLock()  # a run that ends at once (a failed start) re-enters through _ended

    @property
    def limit(self) -> int:
        return self._limit if self._limit is not None else max_training_from_env()

    def submit(self, make: Callable[[], TrainingRun], owner: str | None = None) -> TrainingRun:
        """Build a run with `make` (it must not start yet) and start it, or queue it when every slot is taken.

        RunError when `owner` already has a run training or waiting: one at a time each."""
        limit = self.limit  # a bad setting fails before a run folder exists
        with self._lock:
            mine = [r for r in self._runs.values() if r.owner == owner and not r.snapshot().done]
            if mine:
                raise RunError(f"run {mine[0].id} is still training or waiting to start; stop it or wait for it to finish")
            run = make()
            run.owner = owner
            run.on_end, run.on_cancel = self._ended, self.cancel
            self._runs[run.id] = run
            self._queue.append(run)
            self._promote(limit)
            return run

    def cancel(self, run: TrainingRun) -> bool:
        """Take a waiting run out of the queue (it never starts); False when it is not waiting."""
        with self._lock:
            if run not in self._queue:
                return False
            self._queue.remove(run)
            run.cancelled()
            return True

    def get(self, run_id: str) -> TrainingRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def runs(self) -> list[TrainingRun]:
        """Every run of this process, newest first."""
        with self._lock:
            return list(reversed(self._runs.values()))

    def runs_of(self, owner: str | None) -> list[TrainingRun]:
        """`owner`'s runs, newest first."""
        return [r for r in self.runs() if r.owner == owner]

    def others(self, owner: str | None) -> list[TrainingRun]:
        """The runs of everyone but `owner`, newest first."""
        return [r for r in self.runs() if r.owner != owner]

    def training(self) -> list[TrainingRun]:
        """The runs holding a slot now (preparing, running, paused or stopping)."""
        with self._lock:
            return [r for r in self._runs.values() if r not in self._queue and not r.snapshot().done]

    def waiting(self) -> list[TrainingRun]:
        """The queue, next to start first."""
        with self._lock:
            return list(self._queue)

    def place(self, run: TrainingRun) -> QueuePlace | None:
        """Where `run` stands in the queue and when it should start; None when it is not waiting.

        The estimate plays the queue forward: each slot frees when its run has trained its remaining episodes at
        its current speed, and each waiting run ahead then takes the slot for its episodes at the mean speed of
        the runs training now. None while a run ahead has not reported a speed yet."""
        with self._lock:
            if run not in self._queue:
                return None
            training, queue = self.training(), list(self._queue)
        speeds = [s.episodes_per_s for s in (r.snapshot() for r in training) if s.episodes_per_s > 0]
        mean = sum(speeds) / len(speeds) if speeds else 0.0
        free: list[float] = [0.0] * max(self.limit - len(training), 0)
        known = True
        for r in training:
            snap = r.snapshot()
            known = known and snap.episodes_per_s > 0
            free.append((snap.total - snap.step) / snap.episodes_per_s if snap.episodes_per_s > 0 else 0.0)
        heapq.heapify(free)
        for position, queued in enumerate(queue, start=1):
            start = heapq.heappop(free) if free else 0.0
            if queued is run:
                return QueuePlace(position, len(queue), start if known else None)
            known = known and mean > 0
            heapq.heappush(free, start + (queued.config.train.episodes / mean if mean > 0 else 0.0))
        return None  # unreachable: `run` is in the queue

    def _ended(self, run: TrainingRun) -> None:
        """A run finished, stopped or failed: its slot goes to the next waiting run."""
        self._promote()

    def _promote(self, limit: int | None = None) -> None:
        with self._lock:
            limit = limit if limit is not None else self._safe_limit()
            while self._queue and len(self.training()) < limit:
                self._queue.pop(0).begin()

    def _safe_limit(self) -> int:
        """The limit where a run's end frees a slot (a thread with no one to tell): a bad setting counts as the default."""
        try:
            return self.limit
        except RunError:
            return DEFAULT_MAX_TRAINING


REGISTRY = RunRegistry()  # this process's runs (the dashboard's server: every visitor's)


def get_run(run_id: str) -> TrainingRun | None:
    return REGISTRY.get(run_id)


def active_runs() -> list[TrainingRun]:
    """The runs of this process not yet ended: training or waiting."""
    return [r for r in REGISTRY.runs() if not r.snapshot().done]
