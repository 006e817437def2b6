"""Where a background run trains: a thread of this process (the default) or a child process of its own.

Both run train_run into the run folder and report into the run's RunState and MetricsLog; they differ
only in how the work is carried and how the controls reach it.

Why a child process may be chosen: a crash or an out-of-memory kill in training then leaves this process
(the dashboard's server) up. It costs the child's start-up (importing torch, a few seconds) and about 1 GB;
measured on 2 cores it trains no faster while a page polls it, so threads are the default.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
from typing import TYPE_CHECKING, Any

from core.device import describe_device
from core.experiment import Experiment
from core.store import RunDir
from core.training.live import MetricsLog, Record
from core.training.run import train_reporting_errors
from core.training.trainer import Callback, Controls, Trainer

if TYPE_CHECKING:
    from core.training.background import TrainingRun

_SPAWN = mp.get_context("spawn")  # fork would copy the server's threads and locks mid-flight, and CUDA refuses forks
_POLL_S = 0.5


class _Mirror(Callback):
    """In the training thread: the trainer's device and step into the run's state."""

    def __init__(self, owner: TrainingRun):
        self.state = owner.state

    def on_start(self, trainer: Trainer) -> None:
        self.state.started(describe_device(trainer.sampler.pool.device))

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        self.state.stepped(step)


class ThreadExecutor:
    """Trains in a daemon thread of this process."""

    def __init__(self, experiment: Experiment | None = None):
        self.experiment = experiment  # the data already checked and loaded by the caller, if any
        self._thread: threading.Thread | None = None

    def controls(self) -> Controls:
        return Controls()

    def start(self, owner: TrainingRun) -> None:
        def main() -> None:
            outcome = train_reporting_errors(
                owner.config, owner.run, owner.log, [_Mirror(owner)], owner.controls, owner.init_from, self.experiment
            )
            owner.state.ended(*outcome)

        self._thread = threading.Thread(target=main, name=f"train-{owner.id}", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is not None and not self._thread.is_alive()


class ProcessExecutor:
    """Trains in a spawned child process; a listener thread here moves its reports into the run.

    The child reports through a queue (records, device, how it ended) and a shared step counter, and obeys
    Controls built on multiprocessing events. A child whose parent dies stops at its next step, keeping its
    last checkpoint; a child that dies leaves the run 'failed' with a message.
    """

    def __init__(self) -> None:
        self._channel = _SPAWN.Queue()
        self._step = _SPAWN.Value("q", 0, lock=False)  # written by the child only; a one-word read cannot tear
        self._process: Any = None
        self._listener: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def controls(self) -> Controls:
        return Controls(_SPAWN.Event)

    def start(self, owner: TrainingRun) -> None:
        init_from = None if owner.init_from is None else str(owner.init_from)
        args = (owner.config, str(owner.run.path), init_from, owner.controls, self._channel, self._step)
        # daemon: the server's exit ends it (its last checkpoint and metrics stay on disk)
        self._process = _SPAWN.Process(target=_child_main, args=args, name=f"metascope-train-{owner.id}", daemon=True)
        self._process.start()
        self._listener = threading.Thread(target=self._listen, args=(owner,), name=f"listen-{owner.id}", daemon=True)
        self._listener.start()

    def join(self, timeout: float | None = None) -> bool:
        if self._listener is not None:
            self._listener.join(timeout)
        return self._listener is not None and not self._listener.is_alive()

    def _listen(self, owner: TrainingRun) -> None:
        """Move the child's messages into the run until it ends (or dies without a word)."""
        while True:
            try:
                kind, payload = self._channel.get(timeout=_POLL_S)
            except queue.Empty:
                owner.state.stepped(self._step.value)
                if self._process.is_alive():
                    continue
                code = self._process.exitcode
                error = f"the training process ended unexpectedly (exit code {code}); the last checkpoint in {owner.run.path} is kept"
                owner.state.ended("failed", error)
                owner.run.update_info(status="failed", error=error)
                return
            owner.state.stepped(self._step.value)
            if kind in ("train", "val"):
                owner.log.add(kind, payload)
            elif kind == "start":
                owner.state.started(payload)
            elif kind == "end":
                self._process.join()
                owner.state.stepped(self._step.value)
                owner.state.ended(*payload)
                return


class _Relay(Callback):
    """In the child: sends records and the device to the parent, keeps the shared step current."""

    def __init__(self, channel: Any, step: Any):
        self.channel, self.step = channel, step

    def on_start(self, trainer: Trainer) -> None:
        self.channel.put(("start", describe_device(trainer.sampler.pool.device)))

    def on_log(self, trainer: Trainer, record: Record) -> None:
        self.channel.put(("train", record))

    def on_validation(self, trainer: Trainer, record: Record) -> None:
        self.channel.put(("val", record))

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        self.step.value = step


def _stop_with_parent(controls: Controls, channel: Any) -> None:
    """Stop training when the parent process ends (a killed server must not leave an orphan training)."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        channel.cancel_join_thread()  # nobody reads the queue any more: do not wait for it at exit
        controls.stop.set()
        controls.running.set()

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _child_main(config: Any, run_path: str, init_from: str | None, controls: Controls, channel: Any, step: Any) -> None:
    _stop_with_parent(controls, channel)
    outcome = train_reporting_errors(config, RunDir(run_path), MetricsLog(), [_Relay(channel, step)], controls, init_from)
    channel.put(("end", outcome))
    channel.close()
    channel.join_thread()  # the last message reaches the pipe before the process exits
