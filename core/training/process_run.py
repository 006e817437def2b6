"""A TrainingRun whose training happens in a process of its own (what the dashboard starts).

Why a process: in a thread, the run shares the interpreter lock with the dashboard's server, and each
redraw of a page (building and serialising a figure, pure Python) makes the training thread wait for
the lock between its small tensor operations; measured on 2 cores, a page polling once a second cost a
run about 30% of its episodes per second. In a process the two only share the CPU.

The child trains with train_run into the run folder, as the thread does; it reports through a queue
(records, device, how it ended) and a shared step counter, and obeys the same Controls, built on
multiprocessing events. A child whose parent dies stops at its next step, keeping its last checkpoint.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.device import describe_device
from core.store import DEFAULT_RUNS_DIR, RunDir
from core.training.run import MetricsLog, RunSnapshot, TrainingRun, train_reporting_errors
from core.training.trainer import Callback, Controls, Record, Trainer

_CONTEXT = mp.get_context("spawn")  # fork would copy the server's threads and locks mid-flight, and CUDA refuses forks
_POLL_S = 0.5


class ProcessRun(TrainingRun):
    """Trains a RunConfig in a spawned child process; same controls and snapshot as TrainingRun."""

    def __init__(self, config: RunConfig, runs_dir: str | Path = DEFAULT_RUNS_DIR, init_from: str | Path | None = None):
        super().__init__(config, runs_dir, init_from)
        self.controls = Controls(_CONTEXT.Event)
        self._channel = _CONTEXT.Queue()
        self._shared_step = _CONTEXT.Value("q", 0, lock=False)  # written by the child only; torn reads cannot happen on one word
        start = None if init_from is None else str(init_from)
        self._process = _CONTEXT.Process(
            target=_child_main,
            args=(config, str(self.run.path), start, self.controls, self._channel, self._shared_step),
            name=f"metascope-train-{self.run.id}",
            daemon=True,  # the server's exit ends it (its last checkpoint and metrics stay on disk)
        )
        self._thread = threading.Thread(target=self._listen, name=f"listen-{self.run.id}", daemon=True)

    @property
    def pid(self) -> int | None:
        """The child's process id once started."""
        return self._process.pid

    def start(self) -> ProcessRun:
        self._process.start()
        self._thread.start()
        return self

    def _listen(self) -> None:
        """Move the child's messages into this run until it ends (or dies without a word)."""
        while True:
            try:
                message = self._channel.get(timeout=_POLL_S)
            except queue.Empty:
                if self._process.is_alive():
                    continue
                self._died()
                return
            kind, payload = message
            if kind in ("train", "val"):
                self.log.add(kind, payload)
            elif kind == "start":
                self._device = payload
                if self._status == "preparing":
                    self._status = "running"
            elif kind == "end":
                self._status, self._error = payload
                self._process.join()
                return

    def _died(self) -> None:
        code = self._process.exitcode
        self._error = f"the training process ended unexpectedly (exit code {code}); the last checkpoint in {self.run.path} is kept"
        self._status = "failed"
        self.run.update_info(status="failed", error=self._error)

    def snapshot(self) -> RunSnapshot:
        self._step = self._shared_step.value  # the shared memory belongs to this process: readable after the child ends
        return super().snapshot()


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


def _child_main(config: RunConfig, run_path: str, init_from: str | None, controls: Controls, channel: Any, step: Any) -> None:
    _stop_with_parent(controls, channel)
    relay = _Relay(channel, step)
    outcome = train_reporting_errors(config, RunDir(run_path), MetricsLog(), [relay], controls, init_from)
    channel.put(("end", outcome))
    channel.close()
    channel.join_thread()  # the last message reaches the pipe before the process exits
