"""Catalogue, kind 2: bad inputs that once hung: counts that would run for ages, files that block or never end.

A FIFO in place of a file blocks whoever opens it for reading until a writer comes; /dev/zero never ends.
Each case must finish at once (the per-test timeout turns a hang into a failure) with one line or a sound answer.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from core.store import RunDir
from tests.reliability.conftest import ROOT, GoodRun, Outcome, assert_refused, call_cli

pytestmark = pytest.mark.timeout(120)
HUGE = str(10**23)


def train(tmp_path: Path, *args: str) -> Outcome:
    return call_cli("train", "--device", "cpu", "--n-way", "5", "--q-query", "2", *args, "--runs-dir", tmp_path / "runs")


@pytest.mark.parametrize(
    "flags,flag",
    [
        (["--episodes", HUGE], "--episodes"),
        (["--episodes", "10000001"], "--episodes"),
        (["--meta-batch", "1000000000"], "--meta-batch"),
        (["--val-episodes", "1000000000000", "--val-every", "1", "--episodes", "1"], "--val-episodes"),
        (["--method", "maml", "--inner-steps", "1000000"], "--inner-steps"),
    ],
    ids=["episodes-1e23", "episodes-over-max", "meta-batch-1e9", "val-episodes-1e12", "inner-steps-1e6"],
)
def test_train_count(tmp_path: Path, flags: list[str], flag: str):
    assert_refused(train(tmp_path, *flags), 2, flag)


def test_eval_episodes_1e12(good_run: GoodRun):
    assert_refused(call_cli("eval", "--run", good_run.path, "--episodes", "1000000000000"), 2, "--episodes")


@pytest.mark.parametrize("flag", ["--stored-tasks", "--new-tasks", "--encoder-steps", "--nmf-tasks"])
def test_tasks_count(good_run: GoodRun, flag: str):
    assert_refused(call_cli("tasks", "--run", good_run.path, flag, "1000000000", "--k", "1"), 2)


def fifo_in_place(path: Path) -> None:
    if path.is_dir():
        path.rmdir()
    else:
        path.unlink(missing_ok=True)
    os.mkfifo(path)


def test_init_from_a_fifo(tmp_path: Path, good_run: GoodRun):
    run = good_run.copy(tmp_path / "copy")
    checkpoint = run / "checkpoints" / "step-0000004.safetensors"
    fifo_in_place(checkpoint)
    assert_refused(train(tmp_path, "--init-from", str(checkpoint)), 2, "--init-from")


@pytest.mark.parametrize("name", ["config.json", "checkpoints/step-0000004.safetensors"])
def test_eval_of_a_run_with_a_fifo(tmp_path: Path, good_run: GoodRun, name: str):
    run = good_run.copy(tmp_path)
    fifo_in_place(run / name)
    assert_refused(call_cli("eval", "--run", run, "--episodes", "5"), 2, Path(name).name)


def test_run_json_is_a_fifo(tmp_path: Path, good_run: GoodRun):
    run = good_run.copy(tmp_path)
    fifo_in_place(run / "run.json")
    assert RunDir(run).info() == {} and RunDir(run).status() == "unknown"
    listed = call_cli("runs", "--runs-dir", run.parent)
    assert listed.code == 0 and run.name in listed.out


def test_metrics_is_a_fifo(tmp_path: Path, good_run: GoodRun):
    run = good_run.copy(tmp_path)
    fifo_in_place(run / "metrics.jsonl")
    assert RunDir(run).metrics() == []


def test_liveness_lock_is_a_fifo(tmp_path: Path, good_run: GoodRun):
    run = good_run.copy(tmp_path)
    RunDir(run).update_info(status="running")
    fifo_in_place(run / ".alive.lock")
    assert RunDir(run).status() == "interrupted"  # nobody can hold a lock on a pipe: no process trains it


def test_data_dir_is_a_fifo(tmp_path: Path):
    os.mkfifo(tmp_path / "fifo")
    assert_refused(train(tmp_path, "--dataset", "folder", "--data-dir", str(tmp_path / "fifo")), 2, "--data-dir")


def test_predict_with_a_fifo_among_the_queries(tmp_path: Path, good_run: GoodRun):
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "support" / c).mkdir(parents=True)
        Image.new("L", (28, 28), 40 if c == "a" else 200).save(tmp_path / "support" / c / "x.png")
    (tmp_path / "query").mkdir()
    Image.new("L", (28, 28), 40).save(tmp_path / "query" / "q.png")
    os.mkfifo(tmp_path / "query" / "pipe.png")
    done = call_cli("predict", "--run", good_run.path, "--support", tmp_path / "support", "--query", tmp_path / "query")
    assert done.code == 0, done.err
    assert [line.split(",")[0] for line in done.out.strip().splitlines()[1:]] == ["q.png"]  # the pipe is not an image file


# a file that is a link to /dev/zero never ends: read in a child process with capped memory, so a reader that reads
# it all fails there rather than taking the machine's memory

READ = {
    "config.json": "from core.store import CheckpointError, RunDir\n"
    "try:\n    RunDir(sys.argv[1]).config()\nexcept CheckpointError:\n    print('refused')",
    "run.json": "from core.store import RunDir\nprint(RunDir(sys.argv[1]).status())",
    "metrics.jsonl": "from core.store import RunDir\nprint(len(RunDir(sys.argv[1]).metrics()))",
}
EXPECTED = {"config.json": "refused", "run.json": "unknown", "metrics.jsonl": "0"}


def cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


@pytest.mark.parametrize("name", list(READ))
def test_file_linked_to_dev_zero(tmp_path: Path, good_run: GoodRun, name: str):
    run = good_run.copy(tmp_path)
    (run / name).unlink()
    os.symlink("/dev/zero", run / name)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    code = f"import sys\n{READ[name]}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(run)], capture_output=True, text=True, env=env, timeout=60, preexec_fn=cap_memory
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {name} linked to /dev/zero did not end")
    assert done.returncode == 0 and done.stdout.strip() == EXPECTED[name], done.stderr[-2000:]


def test_runs_listing_of_a_run_whose_config_is_a_fifo(tmp_path: Path, good_run: GoodRun):
    run = good_run.copy(tmp_path)
    fifo_in_place(run / "config.json")
    listed = call_cli("runs", "--runs-dir", run.parent)
    assert listed.code == 0 and "config.json is damaged" in listed.out and "is a pipe" in listed.out
