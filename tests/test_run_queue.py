"""The run registry shared by a server's visitors: owners, the server-wide limit, the queue and its estimates."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.store import RunDir, RunStore
from core.training.background import TrainingRun, start_run
from core.training.registry import MAX_TRAINING_ENV, RunError, RunRegistry
from tests.conftest import make_toy_set

JOIN_S = 120


def config(episodes: int = 100_000) -> RunConfig:
    train = TrainConfig(
        episodes=episodes, train_shape=EpisodeShape(5, 1, 3), eval_shape=EpisodeShape(3, 1, 3),
        val_every=0, checkpoint_every=100_000, log_every=1, rotations=False, device="cpu",
    )  # fmt: skip
    return RunConfig(LearnerConfig(), train)


@pytest.fixture(autouse=True)
def toy_data(monkeypatch):
    image_set = make_toy_set(n_classes=40, size=16)
    monkeypatch.setattr("core.experiment.load_dataset", lambda *a, **k: image_set)


@pytest.fixture
def started(tmp_path) -> Callable[..., TrainingRun]:
    """started(registry, owner, episodes) -> a run submitted to `registry`; every one is stopped at the end."""
    runs: list[TrainingRun] = []

    def start(registry: RunRegistry, owner: str | None, episodes: int = 100_000, isolate: bool = False) -> TrainingRun:
        runs.append(start_run(config(episodes), tmp_path / "runs", owner=owner, registry=registry, isolate=isolate))
        return runs[-1]

    yield start
    for run in runs:
        run.stop()
    for run in runs:
        run.join(JOIN_S)


def wait_for(condition: Callable[[], object], timeout_s: float = JOIN_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_visitors_run_waits_and_starts_by_itself_when_the_slot_frees(started):
    registry = RunRegistry(limit=1)
    first = started(registry, "ann")
    second = started(registry, "bob")
    assert second.snapshot().status == "queued" and registry.waiting() == [second] and registry.training() == [first]
    assert RunDir(second.snapshot().run_dir).status() == "queued"  # the Runs page reads it from the folder
    place = registry.place(second)
    assert (place.position, place.waiting) == (1, 1)
    wait_for(lambda: first.snapshot().step > 0)
    second_steps = second.snapshot().step
    first.stop()
    assert first.join(JOIN_S) and first.snapshot().status == "stopped"
    wait_for(lambda: second.snapshot().step > second_steps)  # nobody pressed anything: it started when the slot freed
    assert registry.waiting() == [] and registry.training() == [second] and registry.place(second) is None


def test_each_visitor_has_one_run_at_a_time_and_sees_their_own_first(started):
    registry = RunRegistry(limit=1)
    ann = started(registry, "ann")
    bob = started(registry, "bob")
    with pytest.raises(RunError, match="still training or waiting"):
        started(registry, "bob")
    assert registry.runs_of("bob") == [bob] and registry.others("bob") == [ann]
    assert ann.owner == "ann" and RunDir(ann.snapshot().run_dir).info()["owner"] == "ann"  # kept with the run on disk
    bob.stop()  # a waiting run leaves the queue at once, and its empty folder goes
    assert bob.snapshot().status == "cancelled" and bob.snapshot().done and not RunDir(bob.snapshot().run_dir).path.exists()
    assert registry.waiting() == []
    again = started(registry, "bob")  # once it is over, bob may start another
    assert again.snapshot().status == "queued"


def test_the_queue_estimates_each_start_from_the_running_runs_speed(started):
    registry = RunRegistry(limit=1)
    first = started(registry, "ann", episodes=5_000)
    wait_for(lambda: first.snapshot().train)  # a speed is known once the first record is in
    first.pause()
    wait_for(lambda: first.snapshot().status == "paused")
    second, third = started(registry, "bob", episodes=300), started(registry, "cat", episodes=200)
    snap = first.snapshot()  # paused: step and speed stay put while the estimates are read
    left = (snap.total - snap.step) / snap.episodes_per_s
    assert registry.place(second).wait_s == pytest.approx(left)
    assert registry.place(third).wait_s == pytest.approx(left + 300 / snap.episodes_per_s)  # bob's episodes at the speed seen
    assert (registry.place(third).position, registry.place(third).waiting) == (2, 2)


def test_the_estimate_is_unknown_until_the_running_run_reports_a_speed(started):
    registry = RunRegistry(limit=1)
    first = started(registry, "ann", isolate=True)  # a child process: seconds of start-up before its first record
    second = started(registry, "bob")
    assert first.snapshot().episodes_per_s == 0 and registry.place(second).wait_s is None
    wait_for(lambda: first.snapshot().train)
    assert registry.place(second).wait_s > 0


def test_the_limit_comes_from_the_environment(started, monkeypatch):
    monkeypatch.setenv(MAX_TRAINING_ENV, "2")
    registry = RunRegistry()
    runs = [started(registry, owner) for owner in ("ann", "bob", "cat")]
    assert registry.training() == runs[:2] and registry.waiting() == runs[2:]
    monkeypatch.setenv(MAX_TRAINING_ENV, "none")
    with pytest.raises(RunError, match=f"{MAX_TRAINING_ENV}='none': set it to a whole number"):
        started(registry, "dan")


def test_a_folder_left_queued_by_a_process_that_is_gone_reads_interrupted(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    run = RunStore(tmp_path).create(config(), status="queued", pid=os.getpid(), host=socket.gethostname())
    assert run.status() == "queued"  # this process is alive: it may still start it
    run.update_info(pid=int(gone.stdout))
    assert run.status() == "interrupted"
