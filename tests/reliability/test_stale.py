"""Catalogue, kind 4: stale state: a run's folder must tell the truth after a crash, a kill or a race.

kill -9 during training and during checkpoint writes (every run then reads 'interrupted' and loads), temporary
files of killed writes (ignored by every reader, cleaned when the run is next held), a failing run marked
failed, and run ids unique when a thousand runs are created at once by several threads and processes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.experiment import load_learner
from core.store import STALE_TEMPORARY_S, RunDir, RunStore, read_checkpoint
from core.training.run import train_run
from core.training.trainer import Callback
from tests.reliability.conftest import ROOT, GoodRun, assert_refused, call_cli

# a child that trains the run's config until killed
CHILD = """
import sys
from core.store import RunDir
from core.training.run import train_run
run = RunDir(sys.argv[1])
train_run(run.config(), run)
"""


def kill_config(mode: str) -> RunConfig:
    """protonet (small checkpoints: mostly training), or a large black-box learner checkpointed every step (68 MB
    checkpoints, fsync'd: most of the time goes into writing them)."""
    big = mode == "checkpoint"
    learner = LearnerConfig(method="blackbox", hidden=1024) if big else LearnerConfig()
    train = TrainConfig(episodes=1_000_000, train_shape=EpisodeShape(5, 1, 2), val_every=0, checkpoint_every=1 if big else 3, device="cpu")
    return RunConfig(learner, train)


def kill_trials(mode: str, runs: Path, rng: random.Random, trials: int) -> list[tuple[RunDir, bool]]:
    """Start `trials` children side by side, each training a new run, and kill -9 each at a random moment after its
    first checkpoint -> [(run, whether the kill cut a write short)]. Side by side: the imports dominate a trial."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    started = []
    for _ in range(trials):
        run = RunStore(runs).create(kill_config(mode))
        started.append((run, subprocess.Popen([sys.executable, "-c", CHILD, str(run.path)], env=env, stderr=subprocess.DEVNULL)))
    try:
        deadline, due = time.monotonic() + 300, {}
        while len(due) < trials or any(child.poll() is None for _, child in started):
            assert time.monotonic() < deadline, "training did not start"
            for run, child in started:
                if run.id not in due and run.checkpoints():
                    due[run.id] = time.monotonic() + rng.uniform(0.0, 1.5)
                assert run.id in due or child.poll() is None, "a child ended before its first checkpoint"
                if run.id in due and time.monotonic() >= due[run.id] and child.poll() is None:
                    os.kill(child.pid, signal.SIGKILL)
                    child.wait(30)
            time.sleep(0.02)
    finally:
        for _, child in started:
            child.kill()
    return [(run, bool(run.temporary_files())) for run, _ in started]


def check_after_kill(run: RunDir) -> None:
    """The promise after kill -9: the run reads interrupted, every checkpoint it lists is whole, the latest loads."""
    assert run.info()["status"] == "running" and run.status() == "interrupted"
    saved = run.checkpoints()
    assert saved and all(not p.name.startswith(".") for p in (c.path for c in saved))  # a cut write is not listed
    for checkpoint in saved:
        read_checkpoint(checkpoint.path)  # whole: atomic writes leave the old file or the new one
    assert load_learner(run)[2].step == saved[-1].step
    listed = call_cli("runs", "--runs-dir", run.path.parent)
    assert [line.split()[1] for line in listed.out.splitlines() if line.split()[0] == run.id] == ["interrupted"], listed.out
    left = run.temporary_files()
    assert run.remove_stale_temporary(min_age_s=0) == len(left) and not run.temporary_files()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["training", "checkpoint"])
def test_kill_9_trials(tmp_path: Path, mode: str):
    """5 trials of each mode here (10 in all); the soak test below runs 25 more of each."""
    for run, _ in kill_trials(mode, tmp_path / "runs", random.Random(f"kill-{mode}"), 5):
        check_after_kill(run)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not os.environ.get("METASCOPE_SOAK"), reason="50 more kill -9 trials (minutes): set METASCOPE_SOAK=1")
@pytest.mark.parametrize("mode", ["training", "checkpoint"])
def test_kill_9_many_trials(tmp_path: Path, mode: str):
    rng, cut = random.Random(f"many-{mode}"), 0
    for _ in range(5):
        for run, was_cut in kill_trials(mode, tmp_path / "runs", rng, 5):
            check_after_kill(run)
            cut += was_cut
    print(f"{mode}: {cut} of 25 kills cut a write short")


def test_temporary_files_of_a_killed_write_are_ignored_and_cleaned(good_run: GoodRun, tmp_path: Path):
    run = RunDir(good_run.copy(tmp_path))
    old = run.checkpoints_dir / ".step-0000006.safetensors.k1l3d.tmp"
    old.write_bytes(b"half a checkpoint")
    os.utime(old, (time.time() - 2 * STALE_TEMPORARY_S,) * 2)
    young = run.path / ".run.json.x7y8z9.tmp"
    young.write_text('{"status": "runn')
    assert [c.step for c in run.checkpoints()] == [2, 4] and run.status() == "finished"
    assert load_learner(run)[2].step == 4
    with run.hold():  # what training does first: stale leftovers go, a write that may be in progress stays
        assert not old.exists() and young.exists()


class Boom(Callback):
    """A bug in training: raises at step 2."""

    def on_step_end(self, trainer, step: int) -> None:
        if step == 2:
            raise RuntimeError("a bug at step 2")


def tiny_config(**train) -> RunConfig:
    return RunConfig(train=TrainConfig(episodes=5, train_shape=EpisodeShape(5, 1, 2), val_every=0, device="cpu", **train))


def test_a_run_whose_training_raises_reads_failed_with_the_error_and_its_log(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("METASCOPE_LOGS", str(tmp_path / "logs"))
    run = RunStore(tmp_path / "runs").create(tiny_config())
    with pytest.raises(RuntimeError):
        train_run(tiny_config(), run, callbacks=[Boom()])
    info = run.info()
    assert run.status() == "failed" and info["error"].startswith("RuntimeError: a bug at step 2")
    log = Path(info["error"].split("traceback in ")[1].rstrip(")"))
    assert log.parent == tmp_path / "logs" and "Traceback" in log.read_text()


def test_a_run_that_cannot_start_reads_failed_not_created(tmp_path: Path, good_run: GoodRun):
    run = RunStore(tmp_path / "runs").create(tiny_config())
    with pytest.raises(Exception, match="step-0000004"):
        train_run(RunConfig(LearnerConfig(method="relation"), tiny_config().train), run, init_from=good_run.checkpoint())
    assert run.status() == "failed" and "protonet" in run.info()["error"]


def test_a_dead_run_lists_as_interrupted(good_run: GoodRun, tmp_path: Path):
    run = RunDir(good_run.copy(tmp_path))
    run.update_info(status="running", pid=2**22 + 1)  # its process is gone: nobody holds its lock
    listed = call_cli("runs", "--runs-dir", run.path.parent)
    assert listed.code == 0 and [line.split()[1] for line in listed.out.splitlines() if line.split()[0] == run.id] == ["interrupted"]


def test_runs_listing_of_a_folder_that_is_not_one(tmp_path: Path):
    (tmp_path / "f").write_text("x")
    assert_refused(call_cli("runs", "--runs-dir", tmp_path / "f"), 2, "--runs-dir")


CREATE = """
import sys, threading
from core.config import RunConfig, TrainConfig
from core.store import RunStore
store, first = RunStore(sys.argv[1]), int(sys.argv[2])
def make(i):
    store.create(RunConfig(train=TrainConfig(seed=i)))
threads = [threading.Thread(target=lambda k=k: [make(first + k * 50 + j) for j in range(50)]) for k in range(5)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


@pytest.mark.timeout(600)
def test_a_thousand_runs_created_at_once_get_a_thousand_folders(tmp_path: Path):
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    children = [subprocess.Popen([sys.executable, "-c", CREATE, str(runs), str(250 * p)], env=env) for p in range(4)]
    assert all(child.wait(500) == 0 for child in children)
    folders = [p for p in runs.iterdir() if p.is_dir()]
    seeds = sorted(json.loads((p / "config.json").read_text())["train"]["seed"] for p in folders)
    assert len(folders) == 1000 and seeds == list(range(1000))  # one folder each, none overwritten
    assert all(RunDir(p).status() == "created" for p in folders)
