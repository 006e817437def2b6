"""SIGTERM in a torchrun job, answered at once: when one process of a job fails, torchrun ends the others with
SIGTERM, and a process must say where its run stands before it goes, whatever it was doing.

A Python signal handler runs only between bytecodes of the main thread, so a main thread blocked in a
collective (NCCL may block for minutes; torchrun kills after 30 s) or racing to its next one would leave the
signal unheard and the user without the line that names the run and how to continue it. The signal's wakeup
byte (signal.set_wakeup_fd) instead reaches a thread that waits for it, whatever the main thread does; that
thread reports and ends the process. One line only: whichever of the thread and a failed collective in the
main thread claims the report first says it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import TracebackType

EXIT_STATUS = 128 + signal.SIGTERM  # what a shell shows for a process ended by SIGTERM


class StopSignal:
    """While entered (in the main thread): on SIGTERM, `report()` runs on a watcher thread, then the process ends.

    claim() -> whether the caller may report a stop itself (True once, for the first caller). A main thread that
    loses the claim waits: the watcher is reporting and will end the process.
    """

    def __init__(self, report: Callable[[], None]):
        self._report = report
        self._once = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    def claim(self) -> bool:
        return self._once.acquire(blocking=False)

    def wait_for_end(self) -> None:
        """Block for good: another thread holds the claim and ends the process."""
        threading.Event().wait()

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may install handlers; outside the command line nothing is watched
        read, write = os.pipe()
        os.set_blocking(write, False)  # the C handler's write must never block
        handler = signal.signal(signal.SIGTERM, lambda number, frame: None)  # the watcher acts; default would kill at once
        wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        watcher = threading.Thread(target=self._watch, args=(read,), name="metascope-stop-signal", daemon=True)
        watcher.start()

        def undo() -> None:
            signal.set_wakeup_fd(wakeup)
            signal.signal(signal.SIGTERM, handler)
            os.close(write)  # the watcher reads end of file and returns
            watcher.join(timeout=5)
            os.close(read)

        self._undo.append(undo)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        while self._undo:
            self._undo.pop()()

    def _watch(self, read: int) -> None:
        while True:
            try:
                numbers = os.read(read, 64)  # one byte per signal that has a Python handler (SIGINT's too)
            except OSError:
                return
            if not numbers:
                return
            if signal.SIGTERM in numbers and self.claim():
                try:
                    self._report()
                    sys.stderr.flush()
                finally:
                    os._exit(EXIT_STATUS)  # no clean-up: the run folder's files are written atomically, its lock dies with us
