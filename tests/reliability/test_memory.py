"""Catalogue, kind 6: memory set by the input: a size in a flag or a file must not decide a giant allocation.

Learners too large for the memory are refused before anything is allocated; a checkpoint's recorded input shape
is checked against its run before predict sizes images by it; files far larger than they should be are refused
by their size, not read. Cases that would allocate gigabytes run in a child process under an address-space
limit, so a failure shows there rather than taking the machine's memory.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.store import RunDir
from tests.reliability.conftest import ROOT, GoodRun, Outcome, assert_refused, call_cli
from tests.reliability.test_tracebacks import replace_checkpoint

LIMIT = 6 << 30  # the children's address space: torch alone maps ~3 GB of it


def limited(*args: str, code: str | None = None) -> Outcome:
    """`python -m core ARGS` (or `python -c code ARGS`) in a child whose address space is capped at LIMIT."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, *(["-c", code] if code else ["-m", "core"]), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, preexec_fn=cap)
    return Outcome(done.returncode, done.stdout, done.stderr)


def train(tmp_path: Path, *args: str) -> Outcome:
    return call_cli("train", "--device", "cpu", "--n-way", "5", "--q-query", "2", *args, "--runs-dir", tmp_path / "runs")


@pytest.mark.parametrize(
    "flags,flag",
    [
        (["--method", "blackbox", "--hidden", "1000000000"], "--hidden"),
        (["--method", "learned_optimizer", "--hidden", "1000000000"], "--hidden"),
        (["--method", "relation", "--relation-hidden", "1000000000"], "--relation-hidden"),
        (["--n-way", "10000", "--q-query", "10000"], "--n-way"),
    ],
    ids=["blackbox-hidden-1e9", "learned-optimizer-hidden-1e9", "relation-hidden-1e9", "episode-1e8-images"],
)
def test_a_learner_or_episode_beyond_any_memory(tmp_path: Path, flags: list[str], flag: str):
    assert_refused(train(tmp_path, *flags), 2, flag)


@pytest.mark.timeout(600)
def test_a_learner_larger_than_the_memory_free_is_refused_before_it_is_built(tmp_path: Path):
    # 1.1 billion parameters (4.3 GB of weights, 17 GB to train with Adam) under a 6 GB address space
    outcome = limited("train", "--method", "blackbox", "--hidden", "16384", "--device", "cpu", "--runs-dir", str(tmp_path / "runs"))
    assert_refused(outcome, 2, "parameters", "--hidden")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.timeout(600)
def test_predict_with_a_checkpoint_recording_a_giant_input_shape(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path / "copy")
    replace_checkpoint(run, lambda t: t, lambda m: {**m, "input_shape": "1,100000,100000"})  # 10 GB per resized image
    for c in ("a", "b"):
        (tmp_path / "support" / c).mkdir(parents=True)
        Image.new("L", (28, 28), 40 if c == "a" else 200).save(tmp_path / "support" / c / "x.png")
    (tmp_path / "query").mkdir()
    Image.new("L", (28, 28), 40).save(tmp_path / "query" / "q.png")
    outcome = limited("predict", "--run", str(run), "--support", str(tmp_path / "support"), "--query", str(tmp_path / "query"))
    assert_refused(outcome, 2, "1x100000x100000")


def test_eval_with_a_checkpoint_recording_a_giant_input_shape(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    replace_checkpoint(run, lambda t: t, lambda m: {**m, "input_shape": "3,65536,65536"})
    assert_refused(call_cli("eval", "--run", run, "--episodes", "5"), 2, "3x65536x65536")


def sparse(path: Path, size: int) -> None:
    """Replace `path` by a file of `size` bytes that takes no disk space (a hole)."""
    path.unlink(missing_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)


def test_a_giant_config_json_is_refused_by_its_size(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    sparse(run / "config.json", 64 << 20)
    assert_refused(call_cli("eval", "--run", run, "--episodes", "5"), 2, "config.json", "67,108,864 bytes")


def test_a_giant_run_json_reads_as_absent(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    sparse(run / "run.json", 64 << 20)
    assert RunDir(run).info() == {} and RunDir(run).status() == "unknown"


PEAK = """
import resource, sys
from core.store import RunDir
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
records = RunDir(sys.argv[1]).metrics()
print(len(records), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.timeout(600)
def test_a_giant_metrics_file_is_not_read_into_memory(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    sparse(run / "metrics.jsonl", 300 << 20)
    done = limited(str(run), code=PEAK)
    assert done.code == 0, done.err[-2000:]
    count, grown_mb = map(int, done.out.split())
    assert count == 0 and grown_mb < 50, f"reading it took {grown_mb} MB"


def test_a_checkpoint_header_declaring_a_trillion_values(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    tensor = {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4 * 10**12]}
    header = json.dumps({"__metadata__": {"format": "metascope-checkpoint-v1", "method": "protonet"}, "w": tensor}).encode()
    path = sorted((run / "checkpoints").glob("step-*"))[-1]
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    assert_refused(call_cli("eval", "--run", run, "--episodes", "5"), 2, "step-0000004")


@pytest.mark.parametrize("flag", ["--stored-k-shot", "--q-query"])
def test_tasks_sizes(good_run: GoodRun, flag: str):
    assert_refused(call_cli("tasks", "--run", good_run.path, flag, "1000000000"), 2)
