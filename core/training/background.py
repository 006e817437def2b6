"""A run training in the background, and start_run: the one way a run is started and registered."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

from core.config import RunConfig
from core.experiment import Experiment
from core.store import DEFAULT_RUNS_DIR, RunStore
from core.training.executors import ProcessExecutor, ThreadExecutor
from core.training.live import MetricsLog, RunSnapshot, RunState
from core.training.registry import REGISTRY, RunRegistry


class TrainingRun:
    """A RunConfig training in the background: its run folder, live metrics and state, and its controls.

    Where it trains is its executor's business (ThreadExecutor or ProcessExecutor); pause(), resume(),
    stop() and snapshot() are the same either way. It starts queued: begin() (the registry's call when a slot
    is free) starts the training; stop() on a queued run takes it out of the queue.
    """

    def __init__(
        self,
        config: RunConfig,
        runs_dir: str | Path = DEFAULT_RUNS_DIR,
        init_from: str | Path | None = None,
        executor: ThreadExecutor | ProcessExecutor | None = None,
        owner: str | None = None,
    ):
        self.config = config
        self.init_from = init_from
        self.executor = executor or ThreadExecutor()
        self.owner = owner  # who started it (the dashboard's visitor id); None from Python or the command line
        # queued, with this process's id: a folder left queued by a server that died reads 'interrupted' (RunDir.status)
        self.run = RunStore(runs_dir).create(config, status="queued", owner=owner, pid=os.getpid(), host=socket.gethostname())
        self.log = MetricsLog()
        self.state = RunState()
        self.controls = self.executor.controls()
        self.on_end: Callable[[TrainingRun], None] | None = None  # the registry hands its slot on
        self.on_cancel: Callable[[TrainingRun], bool] | None = None  # the registry takes it out of its queue

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def isolated(self) -> bool:
        """True when it trains in a child process of its own."""
        return isinstance(self.executor, ProcessExecutor)

    def start(self) -> TrainingRun:
        """Train now, bypassing any queue (tests and single-user scripts); start_run queues through the registry."""
        self.begin()
        return self

    def begin(self) -> None:
        """A slot is free: start training (once)."""
        if self.state.begin():
            self.executor.start(self)

    def finish(self, status: str, error: str | None = None) -> None:
        """The training side's last word: record how it ended, then free its slot."""
        self.state.ended(status, error)
        if self.on_end is not None:
            self.on_end(self)

    def cancelled(self) -> None:
        """Taken out of the queue before it started: its folder (config and run.json only) goes too."""
        if self.state.cancel():
            shutil.rmtree(self.run.path, ignore_errors=True)

    def pause(self) -> None:
        if self.state.pause():
            self.controls.running.clear()

    def resume(self) -> None:
        if self.state.resume():
            self.controls.running.set()

    def stop(self) -> None:
        if self.on_cancel is not None and self.on_cancel(self):
            return
        if self.state.stop():
            self.controls.stop.set()
            self.controls.running.set()  # a paused run must wake up to stop

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the training to end; True when it has."""
        return self.executor.join(timeout)

    def snapshot(self) -> RunSnapshot:
        live = self.executor.live_step()
        if live is not None:
            self.state.stepped(live)
        status, step, device, error = self.state.read()
        train, val = self.log.copy()
        return RunSnapshot(self.id, str(self.run.path), status, step, self.config.train.episodes, train, val, device, error)


def start_run(
    config: RunConfig,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
    init_from: str | Path | None = None,
    isolate: bool = False,
    experiment: Experiment | None = None,
    owner: str | None = None,
    registry: RunRegistry = REGISTRY,
) -> TrainingRun:
    """Start a run in the background, or queue it while the server trains its limit of runs, and register it
    process-wide, so a browser refresh finds it (see core.training.registry).

    isolate: train in a child process rather than a thread (see core.training.executors);
    experiment: the data already checked by core.experiment.preflight (a thread uses it; a child loads its own);
    owner: who starts it: RunError when that owner already has a run training or waiting.
    """
    executor = ProcessExecutor() if isolate else ThreadExecutor(experiment)
    return registry.submit(lambda: TrainingRun(config, runs_dir, init_from, executor, owner), owner)
