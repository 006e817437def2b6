"""A run training in the background, and start_run: the one way a run is started and registered."""

from __future__ import annotations

from pathlib import Path

from core.config import RunConfig
from core.experiment import Experiment
from core.store import DEFAULT_RUNS_DIR, RunStore
from core.training.executors import ProcessExecutor, ThreadExecutor
from core.training.live import MetricsLog, RunSnapshot, RunState
from core.training.registry import register


class TrainingRun:
    """A RunConfig training in the background: its run folder, live metrics and state, and its controls.

    Where it trains is its executor's business (ThreadExecutor or ProcessExecutor); pause(), resume(),
    stop() and snapshot() are the same either way.
    """

    def __init__(
        self,
        config: RunConfig,
        runs_dir: str | Path = DEFAULT_RUNS_DIR,
        init_from: str | Path | None = None,
        executor: ThreadExecutor | ProcessExecutor | None = None,
    ):
        self.config = config
        self.init_from = init_from
        self.executor = executor or ThreadExecutor()
        self.run = RunStore(runs_dir).create(config)
        self.log = MetricsLog()
        self.state = RunState()
        self.controls = self.executor.controls()

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def isolated(self) -> bool:
        """True when it trains in a child process of its own."""
        return isinstance(self.executor, ProcessExecutor)

    def start(self) -> TrainingRun:
        self.executor.start(self)
        return self

    def pause(self) -> None:
        if self.state.pause():
            self.controls.running.clear()

    def resume(self) -> None:
        if self.state.resume():
            self.controls.running.set()

    def stop(self) -> None:
        if self.state.stop():
            self.controls.stop.set()
            self.controls.running.set()  # a paused run must wake up to stop

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the training to end; True when it has."""
        return self.executor.join(timeout)

    def snapshot(self) -> RunSnapshot:
        status, step, device, error = self.state.read()
        train, val = self.log.copy()
        return RunSnapshot(self.id, str(self.run.path), status, step, self.config.train.episodes, train, val, device, error)


def start_run(
    config: RunConfig,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
    init_from: str | Path | None = None,
    isolate: bool = False,
    experiment: Experiment | None = None,
) -> TrainingRun:
    """Start a run in the background and register it process-wide, so a browser refresh finds it.

    isolate: train in a child process rather than a thread (see core.training.executors);
    experiment: the data already checked by core.experiment.preflight (a thread uses it; a child loads its own).
    One run trains at a time: a second start while one is active raises RunError.
    """
    executor = ProcessExecutor() if isolate else ThreadExecutor(experiment)
    return register(lambda: TrainingRun(config, runs_dir, init_from, executor)).start()
