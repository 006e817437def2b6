"""Training in a child process (what the dashboard starts): same snapshot and controls as the thread,
and a child that dies, fails or loses its parent leaves a run folder that says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.experiment import load_learner
from core.training.background import start_run
from tests.conftest import write_image_folder

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 120  # a child imports torch and loads the data before its first step


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("process-run") / "data", size=16)


def config(folder: Path, episodes: int = 20, **train: object) -> RunConfig:
    settings = dict(
        dataset="folder", data_dir=str(folder), image_size=16, episodes=episodes, train_shape=EpisodeShape(5, 1, 3),
        eval_shape=EpisodeShape(3, 1, 3), val_every=10, val_episodes=5, checkpoint_every=10, log_every=5, device="cpu",
    )  # fmt: skip
    return RunConfig(LearnerConfig(), TrainConfig(**{**settings, **train}))


def wait(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_run_in_a_child_process_reports_like_a_thread_and_leaves_a_loadable_run(folder, tmp_path):
    run = start_run(config(folder), tmp_path, isolate=True)
    assert run.isolated
    assert run.join(WAIT_S)
    snap = run.snapshot()
    assert snap.status == "finished" and snap.error is None and snap.step == 20 == snap.total
    assert [r["step"] for r in snap.train] == [5, 10, 15, 20] and [r["step"] for r in snap.val] == [10, 20]
    assert snap.device.startswith("CPU")
    assert run.executor.pid != os.getpid() and not psutil.pid_exists(run.executor.pid)  # ended and reaped
    on_disk = [json.loads(line) for line in (run.run.path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in on_disk if r["kind"] == "train"] == [r["step"] for r in snap.train]
    assert [c.step for c in run.run.checkpoints()] == [10, 20]
    assert load_learner(run.run)[0] is not None and run.run.info()["status"] == "finished"


def test_pause_resume_and_stop_reach_the_child(folder, tmp_path):
    run = start_run(config(folder, episodes=100_000, val_every=0, checkpoint_every=100_000), tmp_path, isolate=True)
    try:
        wait(lambda: run.snapshot().step >= 3, "the first steps")
        run.pause()
        time.sleep(0.3)  # the step in flight may finish
        step = run.snapshot().step
        time.sleep(0.7)
        assert run.snapshot().status == "paused" and run.snapshot().step == step
        run.resume()
        wait(lambda: run.snapshot().step > step + 2, "steps after resuming", 30)
    finally:
        run.stop()
    assert run.join(30)
    snap = run.snapshot()
    assert snap.status == "stopped" and run.run.checkpoints()[-1].step == snap.step  # a stopped run keeps its last state
    assert run.run.info()["status"] == "stopped"


def test_an_error_in_the_child_is_reported_with_its_traceback(folder, tmp_path):
    run = start_run(config(tmp_path / "no-such-folder"), tmp_path / "runs", isolate=True)
    assert run.join(WAIT_S)
    snap = run.snapshot()
    assert snap.status == "failed" and "no-such-folder" in snap.error
    assert "Traceback" in run.run.read_json("error.json")["traceback"]


def test_a_child_killed_from_outside_fails_the_run_with_a_message(folder, tmp_path):
    run = start_run(config(folder, episodes=100_000, val_every=0, checkpoint_every=5), tmp_path, isolate=True)
    wait(lambda: run.snapshot().step >= 6, "a checkpoint")
    os.kill(run.executor.pid, signal.SIGKILL)
    assert run.join(30)
    snap = run.snapshot()
    assert snap.status == "failed" and "ended unexpectedly (exit code -9)" in snap.error
    assert run.run.info()["status"] == "failed" and run.run.checkpoints()  # what was saved stays


PARENT = """
import sys, time
from core.training.background import start_run
from tests.test_process_run import config
from pathlib import Path

if __name__ == "__main__":
    run = start_run(config(Path(sys.argv[1]), episodes=100_000, val_every=0, checkpoint_every=100_000), sys.argv[2], isolate=True)
    while run.snapshot().step < 3:
        time.sleep(0.05)
    print(run.executor.pid, run.run.path, flush=True)
    time.sleep(600)
"""


def test_a_child_whose_parent_dies_stops_and_keeps_its_last_state(folder, tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(script), str(folder), str(tmp_path / "runs")]
    parent = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        child_pid, run_path = parent.stdout.readline().split()
        parent.kill()
        parent.wait(10)
        child = psutil.Process(int(child_pid))
        child.wait(60)  # raises TimeoutExpired if the orphan kept training
    finally:
        parent.kill()
    info = json.loads((Path(run_path) / "run.json").read_text())
    assert info["status"] == "stopped" and list((Path(run_path) / "checkpoints").iterdir())
