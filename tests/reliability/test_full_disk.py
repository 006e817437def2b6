"""Catalogue, kind 7: a full disk. Every write ends with the one-line disk-full message, leaves the old files
intact and marks the run failed. Runs on a small tmpfs mounted for the test (root only; skipped elsewhere).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from core.atomic import StorageError
from core.experiment import load_learner
from core.store import RunDir, read_checkpoint
from tests.reliability.conftest import GoodRun, assert_refused, call_cli, snapshot

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2.6 MB tmpfs: room for a copy of the good run (two 450 KB checkpoints and its 900 KB training state, the
    optimizer's), not for a run that checkpoints every step for long."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2600k", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> None:
    """Write a filler file until the disk is full."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_checkpoint_on_a_full_disk(small_disk: Path):
    outcome = call_cli(
        "train", "--device", "cpu", "--n-way", "5", "--q-query", "2", "--episodes", "6", "--checkpoint-every", "1",
        "--val-every", "0", "--runs-dir", small_disk / "runs",
    )  # fmt: skip
    assert_refused(outcome, 1, "disk full while writing", ".safetensors")  # a checkpoint, or the training state beside it
    run = RunDir(next((small_disk / "runs").iterdir()))
    assert run.status() == "failed" and "disk full" in run.info()["error"]
    steps = [c.step for c in run.checkpoints()]
    assert steps == list(range(1, len(steps) + 1)) and 1 <= len(steps) < 6 and not run.temporary_files()
    for checkpoint in run.checkpoints():
        read_checkpoint(checkpoint.path)  # the checkpoints written are whole
    assert load_learner(run)[2].step == steps[-1]


def test_run_json_on_a_full_disk_still_takes_the_last_status(small_disk: Path, good_run: GoodRun):
    run = RunDir(shutil.copytree(good_run.path, small_disk / "run"))
    run.update_info(status="running")
    fill(small_disk)
    run.update_info(status="failed", error="disk full while writing the last checkpoint; free some space and train again")
    assert run.status() == "failed" and run.info()["error"].startswith("disk full")


def test_metrics_on_a_full_disk(small_disk: Path, good_run: GoodRun):
    run = RunDir(shutil.copytree(good_run.path, small_disk / "run"))
    before = (run.path / "metrics.jsonl").read_bytes()
    fill(small_disk)
    with pytest.raises(StorageError, match="disk full while writing .*metrics.jsonl"):
        run.write_metrics(run.metrics() * 1000)
    assert (run.path / "metrics.jsonl").read_bytes() == before and not run.temporary_files()


def test_eval_figures_on_a_full_disk(small_disk: Path, good_run: GoodRun):
    run = Path(shutil.copytree(good_run.path, small_disk / "run"))
    (run / "eval-test-5w1s.json").write_text('{"accuracy": 0.5}')
    files = snapshot(run)
    fill(small_disk)
    outcome = call_cli("eval", "--run", run, "--episodes", "5", "--n-way", "5")
    assert_refused(outcome, 1, "disk full while writing", "eval-test-5w1s.json")
    assert snapshot(run) == files  # the old figures and everything else intact


def test_a_new_run_on_a_full_disk_leaves_no_half_folder(small_disk: Path):
    (small_disk / "runs").mkdir()
    fill(small_disk)
    outcome = call_cli("train", "--device", "cpu", "--n-way", "5", "--q-query", "2", "--episodes", "2", "--runs-dir", small_disk / "runs")
    assert_refused(outcome, 1, "disk full")
    assert not any((small_disk / "runs").iterdir())
