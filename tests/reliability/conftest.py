"""The bad-input catalogue's tools: a good run made first, the command line called in this process, the checks.

Every case of the catalogue (tests/reliability/test_*.py, one file per kind of failure) asserts what the
project promises: the exit status (2 for input to change, 1 for the machine), exactly one line on stderr that
says what to change, no traceback, and the good run byte-for-byte unchanged (checked after every test).
Argument and file cases call core.cli.main here, which is what `python -m core` runs; a subprocess is used
only where a real process matters (kill -9, memory limits, a server).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the good run: small enough to train in seconds, with validation, two checkpoints and metrics
GOOD_RUN_ARGS = (
    "train", "--episodes", "4", "--n-way", "5", "--k-shot", "1", "--q-query", "2", "--val-every", "2",
    "--val-episodes", "2", "--checkpoint-every", "2", "--device", "cpu",
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What a command did: its exit status and what it printed."""

    code: int
    out: str
    err: str


def call_cli(*args: str | Path) -> Outcome:
    """`python -m core ARGS` in this process. An exception escaping main is what Python would print: a traceback, status 1."""
    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - reported the way the interpreter would
            traceback.print_exc(file=err)
            code = 1
    return Outcome(code, out.getvalue(), err.getvalue())


def run_process(*args: str | Path, timeout: float = 300, **kwargs) -> Outcome:
    """`python -m core ARGS` in a new process (where the process itself matters)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout, **kwargs
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def assert_refused(outcome: Outcome, status: int, *fragments: str) -> str:
    """The promise for a bad input: `status`, one 'error:' line (the last on stderr) holding `fragments`, no traceback."""
    assert "Traceback" not in outcome.err, outcome.err[-3000:]
    lines = [line for line in outcome.err.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"not one error line at the end: {lines[-5:]}"
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    assert outcome.code == status, f"exit {outcome.code} (wanted {status}): {errors[0]}"
    return errors[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) -> sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class GoodRun:
    path: Path
    files: dict[str, str]

    @property
    def runs_dir(self) -> Path:
        return self.path.parent

    def copy(self, where: Path) -> Path:
        """A copy of the run to damage, alone in a runs folder of its own: where/runs/<id>."""
        return Path(shutil.copytree(self.path, where / "runs" / self.path.name))

    def checkpoint(self) -> Path:
        return sorted((self.path / "checkpoints").glob("step-*.safetensors"))[-1]


@pytest.fixture(scope="session")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> GoodRun:
    """A finished run trained once per session; every test checks it was not touched."""
    runs = tmp_path_factory.mktemp("good") / "runs"
    done = call_cli(*GOOD_RUN_ARGS, "--runs-dir", runs)
    assert done.code == 0, done.err[-3000:]
    path = Path(done.out.strip().splitlines()[-1])
    shutil.copytree(path, tmp_path_factory.mktemp("pristine") / "run")
    return GoodRun(path, snapshot(path))


@pytest.fixture(autouse=True)
def good_run_unchanged(good_run: GoodRun, tmp_path_factory: pytest.TempPathFactory):
    """After each case: the good run made first is byte-for-byte as it was (if not, the case fails and the run is
    restored, so the next case is judged on its own)."""
    yield
    if snapshot(good_run.path) != good_run.files:
        pristine = next(tmp_path_factory.getbasetemp().glob("pristine*/run"))
        shutil.rmtree(good_run.path)
        shutil.copytree(pristine, good_run.path)
        pytest.fail("a bad input changed the good run")
