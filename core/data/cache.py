"""Decode once, then memory-map: the on-disk cache every dataset goes through, checked on every load.

An entry is a folder <cache>/datasets/<name>-<key>/ holding
  images-<build>.u8    the decoded images, uint8 (n, c, h, w) row after row, memory-mapped on load so
                       episodes read only the rows they use (a dataset larger than memory trains)
  labels-<build>.i64   the class id of each row
  sources-<build>.tsv  what it was built from: path, size, mtime and sha256 of every source file
  meta.json            shapes, names (and who drew each image, where the data says), the checksums of all of
                       the above and of itself; written last
  progress.json        while building only: the chunks done so far, so an interrupted build resumes
A damaged entry (pixels, labels, names), a changed source folder, or a source rewritten with the
same size and time is rebuilt with a notice, never used silently. The key names what determines the
content (dataset, folder, image size, decoder version); the fingerprint says whether it is still true.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import threading
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.atomic import StorageError, atomic_write_text
from core.data.base import DataError, ImageSet, Normalisation, cache_dir
from core.data.fingerprint import BackgroundCheck, Sources, content_hashes, describe_changes, stale_files
from core.data.images import parallel_map

CACHE_FORMAT = 2  # bump when the layout of an entry changes
CACHE_VERSION = 2  # in every key: bump when a loader changes what it produces
CHUNK_BYTES = 16 << 20  # decoded bytes per build chunk and per checksum: bounds the memory a build needs
SYNC_HASH_BYTES = 256 << 20  # sources up to this size are re-hashed before a load returns; larger ones in the background

Decoded = np.ndarray | str  # uint8 (c, h, w), or why the item could not be used
Progress = Callable[[str, int, int], None]  # (stage, done, total), stage "decoding" / "checking the cache" / "hashing sources"


class DataNotice(UserWarning):
    """A cache entry found stale after it was handed out (by the background content check)."""


@dataclass(frozen=True)
class Decoder:
    """How the items of a plan become images; made only when the cache is (re)built."""

    shape: tuple[int, int, int]  # (c, h, w) of every image
    decode: Callable[[Any], Decoded]
    workers: int | None = None  # threads (None: every core); 1 where decoding holds the GIL


@dataclass(frozen=True)
class Plan:
    """A dataset as the cache builds it: one item per image, in storage order, decoded chunk by chunk."""

    items: Sequence[Any]
    labels: Sequence[int]  # class id of each item
    class_names: tuple[str, ...]
    prepare: Callable[[], Decoder]
    class_groups: tuple[str, ...] | None = None
    class_splits: tuple[str, ...] | None = None
    source: str = ""
    warnings: tuple[str, ...] = ()
    normalisation: Normalisation | None = None
    item_name: Callable[[Any], str] = str  # how a skipped item is named in the warnings
    accept: Callable[[list[str], list[str]], None] | None = None  # (kept class names, warnings): raise DataError if unusable
    drawers: Sequence[int] | None = None  # who drew each item (Omniglot), kept in meta.json: a few KB


@dataclass(frozen=True)
class Hooks:
    """What the caller hears while a dataset loads.

    progress: (stage, done, total) during a build and a full check. notify: what is found after the load
    returned (a source rewritten in place, from the background check); a rebuild the load itself did is
    named in the returned ImageSet.warnings instead.
    """

    progress: Progress | None = None
    notify: Callable[[str], None] | None = None


NO_HOOKS = Hooks()


def cache_key(**parts: object) -> str:
    """A short stable hash of the things that determine a dataset's content."""
    blob = json.dumps({"v": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Source:
    """Which cache entry a dataset lives in and what it is made from."""

    name: str  # dataset name, the entry's prefix
    key: str  # cache_key(...) of everything that determines the content
    files: Sources | None = None  # the files it is decoded from; None for generated data (nothing to go stale)
    root: Path | None = None  # the cache folder (default: cache_dir())

    @property
    def entry(self) -> Path:
        return (self.root or cache_dir()) / "datasets" / f"{self.name}-{self.key}"


def load_cached(source: Source, make_plan: Callable[[], Plan], hooks: Hooks = NO_HOOKS) -> ImageSet:
    """The dataset memory-mapped from its verified cache entry; make_plan() is called, and the entry
    built (or rebuilt, with a notice in the returned warnings), only when needed."""
    listing = source.files.listing() if source.files is not None else []
    image_set, reason = _open_checked(source, listing, hooks)
    if image_set is not None:
        return image_set
    with _locked(source.entry):
        image_set, _ = _open_checked(source, listing, hooks)  # another process may have built it while we waited
        if image_set is not None:
            return image_set
        notice = None if reason is None else f"rebuilt the {source.name} cache ({source.entry}): {reason}"
        return _build(source, make_plan(), listing, hooks, notice)


def cached(name: str, key: str, build: Callable[[], ImageSet], root: Path | None = None, hooks: Hooks = NO_HOOKS) -> ImageSet:
    """A dataset made in memory (generated), stored and memory-mapped like any other."""
    return load_cached(Source(name, key, None, root), lambda: plan_of(build()), hooks)


def plan_of(image_set: ImageSet) -> Plan:
    """A plan that copies an in-memory ImageSet into the cache."""
    images = image_set.images.numpy()
    return Plan(
        items=range(len(images)),
        labels=image_set.labels.tolist(),
        class_names=image_set.class_names,
        prepare=lambda: Decoder(tuple(images.shape[1:]), images.__getitem__, workers=1),
        class_groups=image_set.class_groups,
        class_splits=image_set.class_splits,
        source=image_set.source,
        warnings=image_set.warnings,
        normalisation=image_set.normalisation,
        drawers=None if image_set.drawers is None else image_set.drawers.tolist(),
    )


# ---------------------------------------------------------------- reading and checking an entry


_VERIFIED: set[tuple] = set()  # entries checked in full by this process (stat and checksum of each file)


def _open_checked(source: Source, listing: list[str], hooks: Hooks) -> tuple[ImageSet | None, str | None]:
    """(ImageSet, None) for a sound, current entry; (None, why not) otherwise; (None, None) when there is none."""
    entry = source.entry
    meta_path = entry / "meta.json"
    if not meta_path.exists():
        return None, None
    stale = entry / "stale.txt"
    if stale.exists():
        return None, stale.read_text(encoding="utf-8", errors="replace").strip() or "it was marked stale"
    try:
        meta = _read_meta(meta_path)
        sources = _read_sources(entry, meta)
        if [line.rsplit("\t", 1)[0] for line in sources] != listing:
            return None, "the source files changed since it was built: " + describe_changes(
                [s.rsplit("\t", 1)[0] for s in sources], listing
            )
        memo = _memo_key(entry, meta)
        if memo not in _VERIFIED:
            if problem := _data_problem(entry, meta, hooks):
                return None, problem
            if problem := _content_problem(source, sources, hooks):
                return None, problem
            _VERIFIED.add(memo)
        return _image_set(entry, meta), None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"it could not be read ({type(exc).__name__}: {exc})"


def _read_meta(path: Path) -> dict[str, Any]:
    meta = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        raise ValueError("it was written by another MetaScope version")
    if meta.get("checksum") != _meta_checksum(meta):
        raise ValueError("its description (meta.json) does not match its checksum: class names, splits or shapes were altered")
    return meta


def _meta_checksum(meta: dict[str, Any]) -> str:
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _read_sources(entry: Path, meta: dict[str, Any]) -> list[str]:
    data = (entry / meta["sources_file"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sources_sha256"]:
        raise ValueError("its record of the source files does not match its checksum")
    return data.decode("utf-8").splitlines()


def _memo_key(entry: Path, meta: dict[str, Any]) -> tuple:
    stats = [(entry / meta[k]).stat() for k in ("images_file", "labels_file")]
    return (str(entry), meta["checksum"], *((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats))


def _data_problem(entry: Path, meta: dict[str, Any], hooks: Hooks) -> str | None:
    """Why the entry's pixels or labels cannot be trusted, or None."""
    n, c, h, w = meta["shape"]
    images, labels = entry / meta["images_file"], entry / meta["labels_file"]
    if images.stat().st_size != n * c * h * w or labels.stat().st_size != 8 * n:
        return "its image or label file has the wrong size (truncated or replaced)"
    if hashlib.sha256(labels.read_bytes()).hexdigest() != meta["labels_sha256"]:
        return "its labels do not match their checksum (labels altered or shuffled)"
    crcs = _chunk_crcs(images, meta["chunk_bytes"], hooks)
    bad = [i for i, (a, b) in enumerate(zip(crcs, meta["chunk_crc32"], strict=True)) if a != b]
    if bad:
        return f"its image file is damaged ({len(bad)} of {len(crcs)} chunks do not match their checksums, first: chunk {bad[0]})"
    return None


def _content_problem(source: Source, sources: list[str], hooks: Hooks) -> str | None:
    """Whether a source was rewritten with the same size and time: now for small sources, in the background for large ones."""
    if source.files is None:
        return None
    hashes = [line.rsplit("\t", 1)[1] for line in sources]
    if source.files.total_bytes() <= SYNC_HASH_BYTES:
        return stale_files(source.files, hashes)

    def on_stale(problem: str) -> None:
        message = f"the {source.name} cache in use is stale: {problem}; it is marked and will be rebuilt at the next load"
        with contextlib.suppress(OSError):
            atomic_write_text(source.entry / "stale.txt", problem)
        warnings.warn(message, DataNotice, stacklevel=1)
        if hooks.notify is not None:
            hooks.notify(message)

    BackgroundCheck(source.files, hashes, on_stale)
    return None


def _chunk_crcs(path: Path, chunk_bytes: int, hooks: Hooks) -> list[int]:
    """CRC-32 of each chunk of a file, read with plain reads (the page cache, not this process, holds them) on every core."""
    size = path.stat().st_size
    starts = range(0, size, chunk_bytes)
    report = hooks.progress if len(starts) >= 16 else None  # a bar only where the check takes a while (256 MB and more)
    done, lock = [0], threading.Lock()
    fd = os.open(path, os.O_RDONLY)
    try:

        def crc(start: int) -> int:
            value = zlib.crc32(os.pread(fd, min(chunk_bytes, size - start), start))
            with lock:
                done[0] += 1
                if report is not None:
                    report("checking the cache", done[0], len(starts))
            return value

        return parallel_map(crc, starts)
    finally:
        os.close(fd)


def _image_set(entry: Path, meta: dict[str, Any]) -> ImageSet:
    n, c, h, w = meta["shape"]
    mapped = np.memmap(entry / meta["images_file"], dtype=np.uint8, mode="r", shape=(n, c, h, w))
    with warnings.catch_warnings():  # read-only on purpose: a write into the cache would be a bug, and now a crash
        warnings.simplefilter("ignore", UserWarning)
        images = torch.from_numpy(mapped)
    labels = torch.from_numpy(np.fromfile(entry / meta["labels_file"], dtype=np.int64))
    norm = meta["normalisation"]
    return ImageSet(
        name=meta["name"],
        images=images,
        labels=labels,
        class_names=tuple(meta["class_names"]),
        class_groups=None if meta["class_groups"] is None else tuple(meta["class_groups"]),
        source=meta["source"],
        warnings=tuple(meta["warnings"]),
        class_splits=None if meta["class_splits"] is None else tuple(meta["class_splits"]),
        normalisation=None if norm is None else Normalisation(tuple(norm["mean"]), tuple(norm["std"])),
        drawers=None if meta.get("drawers") is None else torch.tensor(meta["drawers"], dtype=torch.int64),
    )


# ---------------------------------------------------------------- building an entry


@contextlib.contextmanager
def _locked(entry: Path) -> Iterator[None]:
    """One builder per entry across processes (a dashboard and a CLI run may load the same data)."""
    entry.mkdir(parents=True, exist_ok=True)
    with open(entry / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class _Build:
    """The state of one build, saved as progress.json after every chunk so an interrupted build resumes."""

    plan_id: str
    build: str
    chunk_rows: int
    done: dict[str, dict[str, Any]]  # chunk index -> {"crc": int, "failed": {row: reason}}

    def save(self, entry: Path) -> None:
        """Replace progress.json atomically but without fsync: after a crash the chunks' checksums are verified anyway."""
        state = {"plan": self.plan_id, "build": self.build, "chunk_rows": self.chunk_rows, "done": self.done}
        tmp = entry / f".progress.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, entry / "progress.json")

    def file(self, kind: str) -> str:
        return f"{kind}-{self.build}." + {"images": "u8", "labels": "i64", "sources": "tsv"}[kind]


def _build(source: Source, plan: Plan, listing: list[str], hooks: Hooks, notice: str | None) -> ImageSet:
    """Decode the plan into a new entry (resuming an interrupted build of the same plan), then open it."""
    entry = source.entry
    (entry / "meta.json").unlink(missing_ok=True)  # from here on the old entry no longer counts
    (entry / "stale.txt").unlink(missing_ok=True)
    decoder = plan.prepare()
    row_bytes = int(np.prod(decoder.shape))
    try:
        state = _resume_or_start(source, plan, listing, decoder.shape, max(1, CHUNK_BYTES // row_bytes))
        _decode_chunks(entry, plan, decoder, state, hooks)
        meta = _finish(source, plan, state, decoder.shape, listing, hooks)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StorageError(
                errno.ENOSPC,
                f"disk full while writing the {source.name} cache in {entry}; free some space (or point $METASCOPE_CACHE at a "
                "larger disk) and load again: the chunks written so far are kept",
            ) from exc
        raise
    _VERIFIED.add(_memo_key(entry, meta))
    image_set = _image_set(entry, meta)
    return image_set if notice is None else replace(image_set, warnings=(*image_set.warnings, notice))  # this load only


def _resume_or_start(source: Source, plan: Plan, listing: list[str], shape: tuple[int, int, int], chunk_rows: int) -> _Build:
    """The interrupted build of the same plan when there is one, else a new build (old files removed)."""
    entry = source.entry
    blob = json.dumps([CACHE_FORMAT, source.key, listing, list(plan.labels), list(shape), chunk_rows, len(plan.items)])
    plan_id = hashlib.sha256(blob.encode()).hexdigest()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads((entry / "progress.json").read_text(encoding="utf-8"))
        state = _Build(plan_id, saved["build"], saved["chunk_rows"], dict(saved["done"]))
        if saved["plan"] == plan_id and (entry / state.file("images")).exists():
            return state
    for old in entry.iterdir():
        if old.suffix in (".u8", ".i64", ".tsv"):
            old.unlink(missing_ok=True)  # a process still mapping an old file keeps its pages until it exits
    state = _Build(plan_id, uuid.uuid4().hex[:12], chunk_rows, {})
    with open(entry / state.file("images"), "wb") as handle:
        handle.truncate(len(plan.items) * int(np.prod(shape)))  # sparse: disk fills as chunks are written
    state.save(entry)
    return state


def _decode_chunks(entry: Path, plan: Plan, decoder: Decoder, state: _Build, hooks: Hooks) -> None:
    """Decode every chunk not done yet (or done but damaged) on every core, write it at its offset, record it."""
    n, row_bytes = len(plan.items), int(np.prod(decoder.shape))
    fd = os.open(entry / state.file("images"), os.O_RDWR)
    try:
        for k, start in enumerate(range(0, n, state.chunk_rows)):
            stop = min(n, start + state.chunk_rows)
            record = state.done.get(str(k))
            if record is not None and zlib.crc32(os.pread(fd, (stop - start) * row_bytes, start * row_bytes)) == record["crc"]:
                continue  # done by an earlier, interrupted build
            block, failed = _decode_block(plan, decoder, start, stop)
            os.pwrite(fd, block.data, start * row_bytes)
            state.done[str(k)] = {"crc": zlib.crc32(block.data), "failed": failed}
            state.save(entry)
            if hooks.progress is not None:
                hooks.progress("decoding", stop, n)
        os.fsync(fd)  # the pixels must be on disk before meta.json says the entry is complete
    finally:
        os.close(fd)


def _decode_block(plan: Plan, decoder: Decoder, start: int, stop: int) -> tuple[np.ndarray, dict[str, str]]:
    """uint8 (stop - start, c, h, w) of items start..stop (zeros where one failed) and {row: why} for the failures."""
    block = np.zeros((stop - start, *decoder.shape), dtype=np.uint8)
    failed = {}
    for i, result in enumerate(parallel_map(decoder.decode, plan.items[start:stop], decoder.workers)):
        if isinstance(result, str):
            failed[str(start + i)] = result
        elif result.shape != decoder.shape:
            failed[str(start + i)] = f"decoded to {result.shape}, expected {decoder.shape}"
        else:
            block[i] = result
    return block, failed


def _finish(source: Source, plan: Plan, state: _Build, shape: tuple[int, int, int], listing: list[str], hooks: Hooks) -> dict[str, Any]:
    """Drop failed rows and empty classes, write labels, sources and at last meta.json (the entry counts from then on)."""
    entry, n, row_bytes = source.entry, len(plan.items), int(np.prod(shape))
    failed = {int(r): why for chunk in state.done.values() for r, why in chunk["failed"].items()}
    keep = np.ones(n, dtype=bool)
    keep[list(failed)] = False
    notes = list(plan.warnings) + [f"skipped unreadable image: {plan.item_name(plan.items[r])} ({failed[r]})" for r in sorted(failed)]
    labels, names, groups, splits = _kept_classes(plan, keep, notes)
    if plan.accept is not None:
        plan.accept(names, notes)  # the loader's own message first
    if not keep.any():
        first = notes[len(plan.warnings)] if failed else "there are none"
        raise DataError(f"none of the {n} images of {plan.source or source.name} could be read ({first}); check the files")
    if failed:
        _compact(entry / state.file("images"), keep, row_bytes, state.chunk_rows)
    chunk_bytes = state.chunk_rows * row_bytes
    crcs = (
        _chunk_crcs(entry / state.file("images"), chunk_bytes, hooks)
        if failed
        else [state.done[str(k)]["crc"] for k in range(len(state.done))]
    )
    labels_bytes = labels.astype(np.int64).tobytes()
    sources_bytes = "".join(line + "\n" for line in _source_lines(source, listing, hooks)).encode("utf-8")
    for kind, data in (("labels", labels_bytes), ("sources", sources_bytes)):
        _write_synced(entry / state.file(kind), data)
    norm = plan.normalisation
    meta: dict[str, Any] = {
        "format": CACHE_FORMAT, "name": source.name, "key": source.key, "shape": [len(labels), *shape],
        "images_file": state.file("images"), "labels_file": state.file("labels"), "sources_file": state.file("sources"),
        "chunk_bytes": chunk_bytes, "chunk_crc32": crcs,
        "labels_sha256": hashlib.sha256(labels_bytes).hexdigest(), "sources_sha256": hashlib.sha256(sources_bytes).hexdigest(),
        "class_names": names, "class_groups": groups, "class_splits": splits, "source": plan.source, "warnings": notes,
        "normalisation": None if norm is None else {"mean": list(norm.mean), "std": list(norm.std)},
        "drawers": None if plan.drawers is None else [int(d) for d, kept in zip(plan.drawers, keep, strict=True) if kept],
    }  # fmt: skip
    meta["checksum"] = _meta_checksum(meta)
    atomic_write_text(entry / "meta.json", json.dumps(meta))
    (entry / "progress.json").unlink(missing_ok=True)
    return meta


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _kept_classes(plan: Plan, keep: np.ndarray, warnings_: list[str]) -> tuple[np.ndarray, list[str], list[str] | None, list[str] | None]:
    """Labels of the kept rows, renumbered over the classes that still have images; the others are named in warnings_."""
    labels = np.asarray(plan.labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=len(plan.class_names))
    kept_counts = np.bincount(labels[keep], minlength=len(plan.class_names))
    kept = [c for c in range(len(plan.class_names)) if kept_counts[c] > 0]
    for c in range(len(plan.class_names)):
        if counts[c] and not kept_counts[c]:
            warnings_.append(f"left out class '{plan.class_names[c]}': none of its {counts[c]} images could be read")
    new_id = np.full(len(plan.class_names), -1, dtype=np.int64)
    new_id[kept] = np.arange(len(kept))
    pick = lambda values: None if values is None else [values[c] for c in kept]  # noqa: E731
    return new_id[labels[keep]], [plan.class_names[c] for c in kept], pick(plan.class_groups), pick(plan.class_splits)


def _compact(path: Path, keep: np.ndarray, row_bytes: int, chunk_rows: int) -> None:
    """Drop the rows not kept, in place and a chunk at a time (rows only move towards the start)."""
    fd = os.open(path, os.O_RDWR)
    try:
        write_at = 0
        for start in range(0, len(keep), chunk_rows):
            stop = min(len(keep), start + chunk_rows)
            block = np.frombuffer(os.pread(fd, (stop - start) * row_bytes, start * row_bytes), dtype=np.uint8).reshape(
                stop - start, row_bytes
            )
            rows = np.ascontiguousarray(block[keep[start:stop]])
            os.pwrite(fd, rows.data, write_at)
            write_at += rows.nbytes
        os.ftruncate(fd, write_at)
        os.fsync(fd)
    finally:
        os.close(fd)


def _source_lines(source: Source, listing: list[str], hooks: Hooks) -> list[str]:
    """The fingerprint to store: each listing line with its file's sha256."""
    if source.files is None:
        return []
    report = None if hooks.progress is None else (lambda done, total: hooks.progress("hashing sources", done, total))
    return [f"{line}\t{digest}" for line, digest in zip(listing, content_hashes(source.files, report), strict=True)]
