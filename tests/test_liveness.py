"""A run tells the truth about being trained: a live process holds it; one killed with -9 reads 'interrupted'."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import EpisodeShape, RunConfig, TrainConfig
from core.store import CheckpointError, RunDir, RunStore

ROOT = Path(__file__).resolve().parents[1]
TRAIN = """
import sys
from core.config import EpisodeShape, RunConfig, TrainConfig
from core.store import RunDir
from core.training.run import train_run
config = RunConfig(train=TrainConfig(episodes=100_000, train_shape=EpisodeShape(5, 1, 2), val_every=0, checkpoint_every=5, log_every=1))
train_run(config, RunDir(sys.argv[1]))
"""


def test_a_held_run_is_alive_and_a_second_holder_is_refused(tmp_path: Path):
    run = RunStore(tmp_path).create(RunConfig())
    assert not run.alive()
    with run.hold():
        run.update_info(status="running")
        assert run.alive() and run.status() == "running"
        with pytest.raises(CheckpointError, match="is being trained by another process"), run.hold():
            pass
    assert not run.alive() and run.status() == "interrupted"  # still marked running, but nobody holds it
    run.update_info(status="finished")
    assert run.status() == "finished"


def test_a_run_on_another_host_is_alive_while_its_heartbeat_is_fresh(tmp_path: Path):
    run = RunStore(tmp_path).create(RunConfig())
    (run.path / ".alive.lock").touch()
    run.update_info(status="running", host="node-7", heartbeat=time.time())
    assert run.alive() and run.status() == "running"
    run.update_info(heartbeat=time.time() - 3600)
    assert run.status() == "interrupted"


def test_a_training_process_killed_with_sigkill_leaves_an_interrupted_loadable_run(tmp_path: Path):
    run = RunStore(tmp_path / "runs").create(RunConfig(train=TrainConfig(episodes=100_000, train_shape=EpisodeShape(5, 1, 2))))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", TRAIN, str(run.path)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (run.checkpoints() and run.status() == "running"):
            assert time.monotonic() < deadline and child.poll() is None, "training did not start"
            time.sleep(0.1)
        assert run.alive()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    assert run.info()["status"] == "running" and RunDir(run.path).status() == "interrupted"
    from core.experiment import load_learner

    assert load_learner(run)[0] is not None  # the last checkpoint written before the kill loads
