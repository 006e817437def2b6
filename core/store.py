"""Runs on disk: runs/<run_id>/ with config.json, run.json, metrics.jsonl and safetensors checkpoints.

Every write goes through core.atomic, so a crash or a full disk never leaves a half file; every read goes
through core.reading and checks what it reads (types, not only syntax), so a damaged, foreign or hostile
file gives a clear error or is ignored, never a traceback, a hang or a wrong figure.
Nothing a user can hand in is unpickled: checkpoints are safetensors, the rest JSON.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from core.atomic import StorageError, atomic_write_bytes, atomic_write_text
from core.config import RunConfig
from core.errors import UserError
from core.reading import MAX_JSON_BYTES, MAX_METRICS_BYTES, open_regular, read_bytes, read_text

CHECKPOINT_FORMAT = "metascope-checkpoint-v1"
DEFAULT_RUNS_DIR = "runs"
LIVE_LOCK = ".alive.lock"  # held (flock) by the process that trains the run
HEARTBEAT_S = 5.0  # run.json's heartbeat is refreshed at least this often while training
HEARTBEAT_STALE_S = 60.0  # a run on another host whose heartbeat is older than this is taken for dead
STALE_TEMPORARY_S = 600.0  # an atomic write's temporary file this old was left by a killed writer
INFO_BLOCK = 4096  # run.json is padded to whole blocks, so a full disk can still take its last status in place
STATUSES = ("created", "queued", "running", "finished", "stopped", "failed", "cancelled")
# run.json keys and the JSON types they must have; a value of another type reads as absent
INFO_KINDS: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("status", "error", "host", "device", "dataset_source"), (str,)),
    **dict.fromkeys(("created", "finished", "heartbeat", "final_val_acc"), (int, float)),
    **dict.fromkeys(("pid", "parameters", "final_step"), (int,)),
    "input_shape": (list,),
}
RECORD_KINDS = ("train", "val")


class CheckpointError(UserError):
    """A run or checkpoint cannot be loaded; the message says why and what to do."""


class RunBusyError(CheckpointError):
    """Another process is training this run now."""


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

    @property
    def train_state_dir(self) -> Path:
        """Where core.training.resume keeps the latest training state (apart: checkpoints/ holds only weights)."""
        return self.path / "train_state"

    def config(self) -> RunConfig:
        """The run's validated config; CheckpointError when it is missing, unreadable, damaged or foreign."""
        path = self.path / "config.json"
        if not path.exists():
            raise CheckpointError(f"{self.path} is not a MetaScope run: it has no config.json")
        try:
            return RunConfig.from_dict(_load_json(path, MAX_JSON_BYTES))
        except (OSError, ValueError, RecursionError) as exc:  # ConfigError, JSON and UTF-8 errors are ValueErrors
            raise CheckpointError(f"{path} is damaged or not a MetaScope config: {_reason(exc)}") from exc

    def info(self) -> dict[str, Any]:
        """run.json: status, created, device, input shape, final figures; {} if absent or damaged.

        A known key whose value has the wrong type (a damaged or foreign file) reads as absent."""
        try:
            data = _load_json(self.path / "run.json", MAX_JSON_BYTES)
        except (OSError, ValueError, RecursionError):
            return {}
        return {k: v for k, v in data.items() if _info_value_ok(k, v)} if isinstance(data, dict) else {}

    def update_info(self, **values: Any) -> None:
        """Merge `values` into run.json. On a full disk the new text is written over the old in place (it
        fits: the file is padded to whole blocks), so a run can still be marked failed; else StorageError."""
        path = self.path / "run.json"
        text = json.dumps({**self.info(), **values}, indent=2) + "\n"
        padded = text + " " * (-len(text.encode()) % INFO_BLOCK)
        try:
            atomic_write_text(path, padded)
        except StorageError as exc:
            if exc.errno != errno.ENOSPC or not _overwrite_in_place(path, padded.encode()):
                raise

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Mark this run as being trained by this process, for the duration of the block.

        An exclusive lock on runs/<id>/.alive.lock, which the operating system releases when the process ends
        however it ends (kill -9 included), and run.json's pid, host and heartbeat (for readers on other hosts
        of a shared disk, where locks may not be shared). CheckpointError when another process trains it now.
        """
        try:
            fd = os.open(self.path / LIVE_LOCK, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise CheckpointError(f"cannot mark run {self.id} as training ({exc.strerror}); check that {self.path} is writable") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a pipe or device in its place could not prove anything
                raise CheckpointError(f"{self.path / LIVE_LOCK} is not a regular file; remove it and train again")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunBusyError(f"run {self.id} is being trained by another process; wait for it or stop it") from None
            self.update_info(pid=os.getpid(), host=socket.gethostname(), heartbeat=time.time())
            self.remove_stale_temporary()
            yield
        finally:
            os.close(fd)  # releases the lock

    def alive(self) -> bool:
        """Whether a process is training this run now: its lock is held, or (from another host) its heartbeat is fresh."""
        try:
            fd = open_regular(self.path / LIVE_LOCK)  # not a plain open: a FIFO in its place would block
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
        """run.json's status, except that a run marked running whose process is gone, or left waiting in the queue
        of a process (on this host) that is gone, reads 'interrupted' (and a status MetaScope does not write reads 'unknown')."""
        info = self.info()
        status = info.get("status", "unknown")
        if status == "queued" and info.get("host") == socket.gethostname() and not _process_exists(info.get("pid")):
            return "interrupted"
        if status == "running" and not self.alive():
            return "interrupted"
        return status if status in STATUSES else "unknown"

    def temporary_files(self) -> list[Path]:
        """Temporary files of atomic writes in this run (a writer killed mid-write leaves one); readers ignore them."""
        return [p for folder in (self.path, self.checkpoints_dir, self.train_state_dir) for p in _glob(folder, ".*.tmp")]

    def remove_stale_temporary(self, min_age_s: float = STALE_TEMPORARY_S) -> int:
        """Delete temporary files older than `min_age_s` (younger ones may belong to a write in progress) -> how many."""
        removed = 0
        for path in self.temporary_files():
            try:
                if time.time() - path.lstat().st_mtime >= min_age_s:
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # gone already, or not ours to delete
        return removed

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl with all records (one JSON object per line)."""
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))

    def metrics(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl; a line that is not a record (bad bytes, bad JSON, wrong types) is skipped,
        so a damaged line never hides the rest. [] when the file is absent or unreadable."""
        try:
            lines = read_bytes(self.path / "metrics.jsonl", MAX_METRICS_BYTES).splitlines()
        except OSError:
            return []
        records = []
        for line in lines:
            try:
                record = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):
                continue
            if _record_ok(record):
                records.append(record)
        return records

    def save_checkpoint(self, state: dict[str, torch.Tensor], step: int, metadata: dict[str, str]) -> Checkpoint:
        """Write checkpoints/step-XXXXXXX.safetensors atomically."""
        path = self.checkpoints_dir / f"step-{step:07d}.safetensors"
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        meta = {"format": CHECKPOINT_FORMAT, "step": str(step), **metadata}
        # serialised in memory, then written by core.atomic: a full disk then gives its one-line message, not safetensors' own
        atomic_write_bytes(path, save(tensors, metadata=meta))
        return Checkpoint(path, step)

    def checkpoints(self) -> list[Checkpoint]:
        """Checkpoints by step, oldest first."""
        found = []
        for path in _glob(self.checkpoints_dir, "step-*.safetensors"):
            match = re.fullmatch(r"step-(\d+)\.safetensors", path.name)
            if match:
                found.append(Checkpoint(path, int(match.group(1))))
        return sorted(found, key=lambda c: c.step)

    def write_json(self, name: str, data: Any) -> Path:
        return atomic_write_text(self.path / name, json.dumps(data, indent=2))

    def read_json(self, name: str) -> Any:
        """A JSON file of the run; None when it is absent, unreadable or damaged."""
        try:
            return _load_json(self.path / name, MAX_JSON_BYTES)
        except (OSError, ValueError, RecursionError):
            return None


def _load_json(path: Path, limit: int) -> Any:
    return json.loads(read_text(path, limit))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"it is not UTF-8 text (byte {exc.start})"
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)


def _number_ok(value: Any) -> bool:
    return type(value) in (int, float) and (type(value) is int or math.isfinite(value))


def _info_value_ok(key: str, value: Any) -> bool:
    kinds = INFO_KINDS.get(key)
    if kinds is None:
        return True  # a key other tools add: kept as it is
    if kinds == (int, float):
        return _number_ok(value)
    if key == "input_shape":
        return len(value) == 3 and all(type(v) is int and 0 < v <= 1 << 16 for v in value) if isinstance(value, list) else False
    return type(value) in kinds


def _record_ok(record: Any) -> bool:
    """A metrics record: kind train or val, a whole step, and numbers (NaN allowed: a diverged loss is a fact) elsewhere."""
    if not isinstance(record, dict) or record.get("kind") not in RECORD_KINDS or type(record.get("step")) is not int:
        return False
    return all(type(v) in (int, float) for k, v in record.items() if k != "kind")


def _glob(folder: Path, pattern: str) -> list[Path]:
    try:
        return list(folder.glob(pattern)) if folder.is_dir() else []
    except OSError:
        return []


def _overwrite_in_place(path: Path, data: bytes) -> bool:
    """Write `data` over the regular file `path` without allocating (it must not be longer); False when it cannot."""
    try:
        fd = open_regular(path)
        os.close(fd)
        if path.stat().st_size < len(data):
            return False
        with open(path, "r+b") as handle:
            handle.write(data)
            handle.truncate(len(data))
            handle.flush()
            os.fsync(handle.fileno())
        return True
    except OSError:
        return False


def _process_exists(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a MetaScope checkpoint; CheckpointError for anything else."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        os.close(open_regular(path))  # safetensors would wait forever on a FIFO
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != CHECKPOINT_FORMAT:
                raise CheckpointError(f"{path} is a safetensors file but not a MetaScope checkpoint (no '{CHECKPOINT_FORMAT}' tag)")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path} is damaged or not a safetensors checkpoint ({exc}); pick another checkpoint or retrain") from exc
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path} holds values that are not finite (NaN or infinity) in {key}; pick an earlier checkpoint")
    return tensors, metadata


class RunStore:
    """The folder of runs (default ./runs)."""

    def __init__(self, root: str | Path = DEFAULT_RUNS_DIR):
        self.root = Path(root)

    def check(self) -> None:
        """UserError (setting runs_dir) unless run folders can be made in the root: created if missing, a folder, writable."""
        where = f"the runs folder {self.root}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UserError(f"{where} is a file, or inside one; choose a folder", "runs_dir") from None
        except OSError as exc:
            raise UserError(f"cannot create {where} ({exc.strerror}); choose a folder you can write to", "runs_dir") from None
        try:
            fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageError(errno.ENOSPC, f"disk full: no room for a run in {where}; free some space") from None
            raise UserError(f"cannot write in {where} ({exc.strerror}); choose a folder you can write to", "runs_dir") from None

    def create(self, config: RunConfig, **info: Any) -> RunDir:
        """A new run folder named <time>-<method>-<dataset>[-n] holding config.json and run.json.

        The folder is made with mkdir, which fails if it exists, so two creators (threads, processes, hosts
        on a shared disk) never share one: past the first few numbered names a random suffix is drawn.
        """
        self.check()
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.learner.method}-{config.train.dataset}"
        for n in range(1_000_000):
            name = stem if n == 0 else f"{stem}-{n}" if n < 10 else f"{stem}-{secrets.token_hex(4)}"
            try:
                (self.root / name).mkdir()
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise StorageError(exc.errno or 0, f"could not create a run folder in {self.root}: {exc.strerror}") from exc
        else:  # unreachable in practice: a million draws of 32 random bits all taken
            raise StorageError(errno.EEXIST, f"no free run folder name in {self.root}")
        run = RunDir(self.root / name)
        try:
            atomic_write_text(run.path / "config.json", config.to_json())
            run.update_info(**{"created": time.time(), "status": "created", **info})
        except BaseException:
            shutil.rmtree(run.path, ignore_errors=True)  # no half-made run left behind (a full disk, an interrupt)
            raise
        return run

    def runs(self) -> list[RunDir]:
        """Runs with a config, newest first (an unreadable root or entry is skipped)."""
        try:
            entries = list(self.root.iterdir()) if self.root.is_dir() else []
        except OSError:
            return []
        found = [RunDir(p) for p in entries if not p.name.startswith(".") and (p / "config.json").exists()]
        return sorted(found, key=lambda r: r.info().get("created", 0), reverse=True)

    def get(self, run_id: str) -> RunDir:
        """The run `run_id` of this folder; CheckpointError for a name that is not a run id here (a path, '..', hidden)."""
        if not is_run_id(run_id):
            raise CheckpointError(f"'{run_id[:60]}' is not a run id (a run folder's name, such as 20250101-120000-protonet-glyphs)")
        run = RunDir(self.root / run_id)
        if not (run.path / "config.json").exists():
            raise CheckpointError(f"no run '{run_id}' in {self.root}")
        return run

    def delete(self, run_id: str) -> None:
        """Remove a run folder (the dashboard asks for confirmation first)."""
        shutil.rmtree(self.get(run_id).path)


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def is_run_id(text: str) -> bool:
    """A plain folder name: letters, digits, '.', '_', '-', not starting with a dot (so never '..' or a path)."""
    return isinstance(text, str) and RUN_ID.fullmatch(text) is not None
