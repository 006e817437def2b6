"""Runs on disk: runs/<run_id>/ with config.json, run.json, metrics.jsonl and safetensors checkpoints.

Every write goes through core.atomic, so a crash or a full disk never leaves a half file.
Nothing a user can hand in is unpickled: checkpoints are safetensors, the rest JSON.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from core.atomic import atomic_write, atomic_write_text
from core.config import ConfigError, RunConfig
from core.errors import UserError

CHECKPOINT_FORMAT = "metascope-checkpoint-v1"
DEFAULT_RUNS_DIR = "runs"
LIVE_LOCK = ".alive.lock"  # held (flock) by the process that trains the run
HEARTBEAT_S = 5.0  # run.json's heartbeat is refreshed at least this often while training
HEARTBEAT_STALE_S = 60.0  # a run on another host whose heartbeat is older than this is taken for dead


class CheckpointError(UserError):
    """A run or checkpoint cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file and the step it was taken at."""

    path: Path
    step: int


class RunDir:
    """One run's folder. Cheap to create; reads files on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def config(self) -> RunConfig:
        """The run's validated config; CheckpointError when it is missing or foreign."""
        path = self.path / "config.json"
        if not path.exists():
            raise CheckpointError(f"{self.path} is not a MetaScope run: it has no config.json")
        try:
            return RunConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, ConfigError) as exc:
            raise CheckpointError(f"{path} is damaged or not a MetaScope config: {exc}") from exc

    def info(self) -> dict[str, Any]:
        """run.json: status, created, device, input shape, final figures; {} if absent or damaged."""
        try:
            return json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def update_info(self, **values: Any) -> None:
        atomic_write_text(self.path / "run.json", json.dumps({**self.info(), **values}, indent=2))

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Mark this run as being trained by this process, for the duration of the block.

        An exclusive lock on runs/<id>/.alive.lock, which the operating system releases when the process ends
        however it ends (kill -9 included), and run.json's pid, host and heartbeat (for readers on other hosts
        of a shared disk, where locks may not be shared). CheckpointError when another process trains it now.
        """
        fd = os.open(self.path / LIVE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CheckpointError(f"run {self.id} is being trained by another process; wait for it or stop it") from None
            self.update_info(pid=os.getpid(), host=socket.gethostname(), heartbeat=time.time())
            yield
        finally:
            os.close(fd)  # releases the lock

    def alive(self) -> bool:
        """Whether a process is training this run now: its lock is held, or (from another host) its heartbeat is fresh."""
        try:
            fd = os.open(self.path / LIVE_LOCK, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        info = self.info()
        elsewhere = info.get("host") not in (None, socket.gethostname())
        heartbeat = info.get("heartbeat")
        return elsewhere and isinstance(heartbeat, (int, float)) and time.time() - heartbeat < HEARTBEAT_STALE_S

    def status(self) -> str:
        """run.json's status, except that a run marked running whose process is gone reads 'interrupted'."""
        status = self.info().get("status", "unknown")
        return "interrupted" if status == "running" and not self.alive() else str(status)

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl with all records (one JSON object per line)."""
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))

    def metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a foreign line must not hide the rest
        return records

    def save_checkpoint(self, state: dict[str, torch.Tensor], step: int, metadata: dict[str, str]) -> Checkpoint:
        """Write checkpoints/step-XXXXXXX.safetensors atomically."""
        path = self.checkpoints_dir / f"step-{step:07d}.safetensors"
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        meta = {"format": CHECKPOINT_FORMAT, "step": str(step), **metadata}
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
        return Checkpoint(path, step)

    def checkpoints(self) -> list[Checkpoint]:
        """Checkpoints by step, oldest first."""
        found = []
        for path in self.checkpoints_dir.glob("step-*.safetensors"):
            match = re.fullmatch(r"step-(\d+)\.safetensors", path.name)
            if match:
                found.append(Checkpoint(path, int(match.group(1))))
        return sorted(found, key=lambda c: c.step)

    def write_json(self, name: str, data: Any) -> Path:
        return atomic_write_text(self.path / name, json.dumps(data, indent=2))

    def read_json(self, name: str) -> Any:
        path = self.path / name
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a MetaScope checkpoint; CheckpointError for anything else."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != CHECKPOINT_FORMAT:
                raise CheckpointError(f"{path} is a safetensors file but not a MetaScope checkpoint (no '{CHECKPOINT_FORMAT}' tag)")
            return {key: handle.get_tensor(key) for key in handle.keys()}, metadata
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path} is damaged or not a safetensors checkpoint ({exc}); pick another checkpoint or retrain") from exc


class RunStore:
    """The folder of runs (default ./runs)."""

    def __init__(self, root: str | Path = DEFAULT_RUNS_DIR):
        self.root = Path(root)

    def create(self, config: RunConfig, **info: Any) -> RunDir:
        """A new run folder named <time>-<method>-<dataset>[-n] holding config.json and run.json."""
        self.root.mkdir(parents=True, exist_ok=True)
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.learner.method}-{config.train.dataset}"
        for n in range(1000):
            path = self.root / (stem if n == 0 else f"{stem}-{n}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        run = RunDir(path)
        atomic_write_text(path / "config.json", config.to_json())
        run.update_info(created=time.time(), status="created", **info)
        return run

    def runs(self) -> list[RunDir]:
        """Runs with a config, newest first."""
        if not self.root.exists():
            return []
        found = [RunDir(p) for p in self.root.iterdir() if (p / "config.json").exists()]
        return sorted(found, key=lambda r: r.info().get("created", 0), reverse=True)

    def get(self, run_id: str) -> RunDir:
        run = RunDir(self.root / run_id)
        if not (run.path / "config.json").exists():
            raise CheckpointError(f"no run '{run_id}' in {self.root}")
        return run

    def delete(self, run_id: str) -> None:
        """Remove a run folder (the dashboard asks for confirmation first)."""
        shutil.rmtree(self.get(run_id).path)
