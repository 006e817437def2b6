"""What a training run shares with those who watch it: its state, its metrics, and a snapshot of both."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]
DONE = ("finished", "stopped", "failed")


class MetricsLog:
    """Training and validation records behind a lock: written by the training side, read by pollers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._train: list[Record] = []
        self._val: list[Record] = []

    def add(self, kind: str, record: Record) -> None:
        with self._lock:
            (self._train if kind == "train" else self._val).append(record)

    def copy(self) -> tuple[list[Record], list[Record]]:
        with self._lock:
            return list(self._train), list(self._val)

    def records(self) -> list[Record]:
        """All records tagged with their kind, as metrics.jsonl holds them."""
        train, val = self.copy()
        return [{"kind": "train", **r} for r in train] + [{"kind": "val", **r} for r in val]


class RunState:
    """A run's status, step, device and error, changed only through these transitions, under one lock.

    preparing -> running <-> paused; running/paused/preparing -> stopping; any -> finished | stopped | failed.
    The controls (pause, resume, stop) come from the watchers' threads, the rest from the training side.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status, self._step, self._device, self._error = "preparing", 0, "", None

    def started(self, device: str) -> None:
        with self._lock:
            self._device = device
            if self._status == "preparing":
                self._status = "running"

    def stepped(self, step: int) -> None:
        with self._lock:
            self._step = step

    def pause(self) -> bool:
        """running -> paused; False (nothing changes) from any other status."""
        return self._move(("running",), "paused")

    def resume(self) -> bool:
        return self._move(("paused",), "running")

    def stop(self) -> bool:
        return self._move(("preparing", "running", "paused"), "stopping")

    def ended(self, status: str, error: str | None = None) -> None:
        with self._lock:
            self._status, self._error = status, error

    def read(self) -> tuple[str, int, str, str | None]:
        """(status, step, device, error) as one consistent reading."""
        with self._lock:
            return self._status, self._step, self._device, self._error

    def _move(self, sources: tuple[str, ...], target: str) -> bool:
        with self._lock:
            if self._status not in sources:
                return False
            self._status = target
            return True


@dataclass(frozen=True)
class RunSnapshot:
    """What a poller needs to draw a run's progress; plain data."""

    run_id: str
    run_dir: str
    status: str  # preparing | running | paused | stopping | finished | stopped | failed
    step: int
    total: int
    train: list[Record]
    val: list[Record]
    device: str
    error: str | None = None
    checkpoints: list[int] = field(default_factory=list)

    @property
    def episodes_per_s(self) -> float:
        return self.train[-1]["episodes_per_s"] if self.train else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.episodes_per_s
        return (self.total - self.step) / rate if rate > 0 and self.status in ("running", "paused") else None

    @property
    def done(self) -> bool:
        return self.status in DONE
