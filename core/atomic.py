"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class StorageError(OSError):
    """Writing to disk failed; the previous file (if any) is untouched."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write `path` by calling `write(tmp_path)` on a temporary sibling, then renaming it.

    The rename is atomic on POSIX, so an interrupted or failed write (a full disk)
    leaves the previous version in place. Raises StorageError with a readable message.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:  # flush data to disk before it replaces the old file
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; runs and caches are meant to be shareable
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise StorageError(errno.ENOSPC, f"disk full while writing {path}; free some space - nothing was overwritten") from exc
        raise StorageError(exc.errno or 0, f"could not write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically replace `path` with `text` (UTF-8)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically replace `path` with `data`."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
