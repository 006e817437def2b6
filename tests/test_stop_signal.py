"""SIGTERM under core.training.stop_signal: said and ended at once, even while the main thread is blocked in a
call that a Python signal handler cannot interrupt (as a collective waiting for a dead peer is)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCKED = """
import os, sys
from core.training.stop_signal import StopSignal
read, write = os.pipe()
with StopSignal(lambda: print("run 7 is interrupted", file=sys.stderr)) as stop:
    print("ready", flush=True)
    os.read(read, 1)  # blocks for good: nothing writes; a Python handler would run and the read go on
print("left the block", flush=True)
"""

CLAIMED = """
import os, signal, sys, time
from core.training.stop_signal import StopSignal
with StopSignal(lambda: print("watcher said it", file=sys.stderr)) as stop:
    assert stop.claim() and not stop.claim()  # the main thread reports, once
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)
    print("main thread said it", file=sys.stderr)
print("left", flush=True)
"""


def start(code: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_sigterm_reaches_a_blocked_main_thread_s_process_reports_once_and_ends_it():
    job = start(BLOCKED)
    assert job.stdout.readline() == "ready\n"
    sent = time.monotonic()
    job.send_signal(signal.SIGTERM)
    out, err = job.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert job.returncode == 128 + signal.SIGTERM
    assert err.splitlines() == ["run 7 is interrupted"] and "left the block" not in out


def test_a_report_claimed_by_the_main_thread_is_not_said_again_and_the_handler_is_put_back():
    job = start(CLAIMED)
    out, err = job.communicate(timeout=30)
    assert job.returncode == 0, err
    assert err.splitlines() == ["main thread said it"] and out == "left\n"
    after = start(
        "import signal; from core.training.stop_signal import StopSignal\nwith StopSignal(print): pass\n"
        "print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, signal.set_wakeup_fd(-1))"
    )
    assert after.communicate(timeout=30)[0].split() == ["True", "-1"]
