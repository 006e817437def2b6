"""What a cache entry was built from: each source file's path, size, time and content hash.

A listing (path, size, mtime) is cheap and catches added, removed and rewritten files; the
content hash catches the rest (a file rewritten with the same size and time). Hashing reads
every byte, so large sources are hashed in a background thread instead of holding up the load.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.data.images import parallel_map

HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class Sources:
    """The files a dataset is decoded from, named relative to `root` in the fingerprint."""

    root: Path
    files: tuple[Path, ...]

    def listing(self) -> list[str]:
        """One "relative path<TAB>size<TAB>mtime_ns" line per file; raises OSError if one vanished."""
        lines = []
        for path in self.files:
            stat = path.stat()
            lines.append(f"{os.path.relpath(path, self.root)}\t{stat.st_size}\t{stat.st_mtime_ns}")
        return lines

    def total_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks (hashlib releases the GIL, so threads overlap)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def content_hashes(sources: Sources, progress: Callable[[int, int], None] | None = None) -> list[str]:
    """sha256 of every source file, in order, hashed on every core."""
    done = [0]
    lock = threading.Lock()

    def one(path: Path) -> str:
        value = file_hash(path)
        if progress is not None:
            with lock:
                done[0] += 1
                progress(done[0], len(sources.files))
        return value

    return parallel_map(one, sources.files)


def describe_changes(recorded: list[str], current: list[str], limit: int = 3) -> str:
    """'2 added (a.jpg, b.jpg), 1 removed (c.jpg), 1 changed (d.jpg)' between two listings."""
    before = {line.rsplit("\t", 2)[0]: line for line in recorded}  # path -> its whole line
    after = {line.rsplit("\t", 2)[0]: line for line in current}
    parts = []
    for label, names in (
        ("added", sorted(set(after) - set(before))),
        ("removed", sorted(set(before) - set(after))),
        ("changed", sorted(p for p in set(before) & set(after) if before[p] != after[p])),
    ):
        if names:
            shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
            parts.append(f"{len(names)} {label} ({shown})")
    return ", ".join(parts) or "the file order changed"


def stale_files(sources: Sources, recorded_hashes: list[str], limit: int = 3) -> str | None:
    """None when every file still has its recorded content, else which ones differ (hashed on every core)."""
    current = content_hashes(sources)
    changed = [os.path.relpath(p, sources.root) for p, old, new in zip(sources.files, recorded_hashes, current, strict=True) if old != new]
    if not changed:
        return None
    shown = ", ".join(changed[:limit]) + (", ..." if len(changed) > limit else "")
    return f"{len(changed)} source file(s) rewritten with the same size and time ({shown})"


class BackgroundCheck:
    """Re-hashes the sources in a daemon thread; `on_stale(reason)` runs there if any content changed."""

    def __init__(self, sources: Sources, recorded_hashes: list[str], on_stale: Callable[[str], None]):
        self.problem: str | None = None
        self._thread = threading.Thread(
            target=self._run, args=(sources, recorded_hashes, on_stale), daemon=True, name="metascope-source-check"
        )
        self._thread.start()

    def _run(self, sources: Sources, recorded_hashes: list[str], on_stale: Callable[[str], None]) -> None:
        try:
            self.problem = stale_files(sources, recorded_hashes)
        except OSError as exc:  # a file vanished meanwhile: the next load's listing will see it
            self.problem = f"a source file could not be read again ({exc})"
        if self.problem is not None:
            on_stale(self.problem)

    def wait(self, timeout: float | None = None) -> str | None:
        """Block until the check ends; the problem found, or None."""
        self._thread.join(timeout)
        return self.problem
