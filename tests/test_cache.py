"""The dataset cache checks itself: damage and staleness are detected and rebuilt with a notice; builds resume."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import core.data.cache as cache
import core.data.folder as folder
from core.data.cache import Hooks
from core.data.folder import load_folder


def _tree(root: Path, classes: int = 3, per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            # BMP: uncompressed, so an image rewritten with other pixels keeps its byte count
            Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), "RGB").save(root / f"class{c}" / f"{i}.bmp")
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return _tree(tmp_path / "data")


def _entry(cache_root: Path) -> Path:
    (entry,) = (cache_root / "datasets").glob("folder-*")
    return entry


def _meta(cache_root: Path) -> dict:
    return json.loads((_entry(cache_root) / "meta.json").read_text())


def _load(data: Path, cache_root: Path, **kw):
    cache._VERIFIED.clear()  # as a new process would: this one has already checked the entry it built
    return load_folder(data, image_size=8, cache_root=cache_root, **kw)


def _notice(image_set) -> str:
    (notice,) = [w for w in image_set.warnings if w.startswith("rebuilt the folder cache")]
    return notice


def test_entry_is_a_memory_map_and_a_second_load_decodes_nothing(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first = _load(data, tmp_path / "c")
    assert first.images.shape == (18, 3, 8, 8)
    mapped = str(_entry(tmp_path / "c") / _meta(tmp_path / "c")["images_file"])
    assert any(line.endswith(mapped) and " r--s " in line for line in Path("/proc/self/maps").read_text().splitlines())  # read-only, shared
    monkeypatch.setattr(folder, "_decode", lambda *a: pytest.fail("decoded again"))
    second = _load(data, tmp_path / "c")
    assert torch.equal(first.images, second.images) and second.warnings == first.warnings == ()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("flip", "image file is damaged (1 of 1 chunks do not match their checksums"),
        ("random", "image file is damaged"),
        ("truncate", "wrong size"),
        ("shuffle", "labels do not match their checksum"),
        ("rename", "meta.json) does not match its checksum"),
        ("sources", "record of the source files does not match its checksum"),
    ],
)
def test_damaged_entry_is_rebuilt_with_a_notice(data: Path, tmp_path: Path, damage: str, reason: str):
    good = _load(data, tmp_path / "c")
    expected = good.images.clone()
    entry, meta = _entry(tmp_path / "c"), _meta(tmp_path / "c")
    images, labels = entry / meta["images_file"], entry / meta["labels_file"]
    if damage == "flip":
        raw = bytearray(images.read_bytes())
        raw[100] ^= 0x01
        images.write_bytes(bytes(raw))
    elif damage == "random":
        images.write_bytes(np.random.default_rng(1).integers(0, 256, images.stat().st_size, dtype=np.uint8).tobytes())
    elif damage == "truncate":
        images.write_bytes(images.read_bytes()[:-64])
    elif damage == "shuffle":
        labels.write_bytes(np.random.default_rng(1).permutation(np.fromfile(labels, dtype=np.int64)).tobytes())
    elif damage == "rename":
        meta["class_names"] = ["class1", "class0", "class2"]
        (entry / "meta.json").write_text(json.dumps(meta))
    else:
        path = entry / meta["sources_file"]
        path.write_text(path.read_text().replace("class0", "classX"))
    rebuilt = _load(data, tmp_path / "c")
    assert reason in _notice(rebuilt)
    assert torch.equal(rebuilt.images, expected) and rebuilt.class_names == good.class_names
    assert torch.equal(rebuilt.labels, good.labels)
    assert _load(data, tmp_path / "c").warnings == ()  # the notice belongs to the load that rebuilt


def test_changed_folder_is_rebuilt_with_what_changed(data: Path, tmp_path: Path):
    _load(data, tmp_path / "c")
    (data / "class1" / "0.bmp").unlink()
    Image.new("RGB", (9, 9), (1, 2, 3)).save(data / "class2" / "new.bmp")
    notice = _notice(_load(data, tmp_path / "c"))
    assert "the source files changed since it was built: 1 added (class2/new.bmp), 1 removed (class1/0.bmp)" in notice


def _rewrite_keeping_size_and_time(path: Path) -> None:
    """Other pixels, the same byte count and modification time: invisible to a listing of sizes and times."""
    stat = path.stat()
    image = np.asarray(Image.open(path)).copy()
    image[0, 0] = 255 - image[0, 0]
    Image.fromarray(image).save(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def test_stale_entry_same_size_and_time_is_found_by_content_hash(data: Path, tmp_path: Path):
    _load(data, tmp_path / "c")
    _rewrite_keeping_size_and_time(data / "class0" / "3.bmp")
    notice = _notice(_load(data, tmp_path / "c"))
    assert "1 source file(s) rewritten with the same size and time (class0/3.bmp)" in notice


def test_large_sources_are_hashed_in_the_background_and_marked_stale(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _load(data, tmp_path / "c")
    _rewrite_keeping_size_and_time(data / "class0" / "3.bmp")
    monkeypatch.setattr(cache, "SYNC_HASH_BYTES", 0)  # every source "large": the load returns before hashing
    heard, done = [], threading.Event()
    with pytest.warns(cache.DataNotice, match="stale"):
        in_use = _load(data, tmp_path / "c", hooks=Hooks(notify=lambda m: (heard.append(m), done.set())))
        assert done.wait(30)
    assert in_use.warnings == () and "class0/3.bmp" in heard[0] and "rebuilt at the next load" in heard[0]
    assert "rewritten with the same size and time (class0/3.bmp)" in _notice(_load(data, tmp_path / "c"))


def test_interrupted_build_resumes_from_its_chunks(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cache, "CHUNK_BYTES", 4 * 3 * 8 * 8)  # 4 images per chunk: 5 chunks for 18 images
    decoded: list[Path] = []
    real = folder._decode

    def interrupted(path: Path, size: int, channels: int):
        if len(decoded) == 9:
            raise KeyboardInterrupt  # as Ctrl-C (or a kill) in the middle of chunk 3
        decoded.append(path)
        return real(path, size, channels)

    monkeypatch.setattr(folder, "_decode", interrupted)
    monkeypatch.setattr(cache, "parallel_map", lambda fn, items, workers=None: [fn(i) for i in items])  # a predictable order
    with pytest.raises(KeyboardInterrupt):
        _load(data, tmp_path / "c")
    progress = json.loads((_entry(tmp_path / "c") / "progress.json").read_text())
    assert sorted(progress["done"]) == ["0", "1"]
    decoded.clear()
    monkeypatch.setattr(folder, "_decode", lambda path, size, channels: (decoded.append(path), real(path, size, channels))[1])
    seen: list[tuple[str, int, int]] = []
    resumed = _load(data, tmp_path / "c", hooks=Hooks(progress=lambda *a: seen.append(a)))
    assert len(decoded) == 10  # chunks 2, 3, 4 only
    assert [s for s in seen if s[0] == "decoding"] == [("decoding", 12, 18), ("decoding", 16, 18), ("decoding", 18, 18)]
    monkeypatch.setattr(cache, "CHUNK_BYTES", 16 << 20)
    fresh = load_folder(data, image_size=8, cache_root=tmp_path / "fresh")
    assert torch.equal(resumed.images, fresh.images) and not (_entry(tmp_path / "c") / "progress.json").exists()


def test_unreadable_rows_are_dropped_from_the_file(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cache, "CHUNK_BYTES", 4 * 3 * 8 * 8)
    (data / "class1" / "2.bmp").write_bytes(b"not a bmp")
    image_set = _load(data, tmp_path / "c")
    assert image_set.class_counts().tolist() == [6, 5, 6]
    assert any("class1/2.bmp" in w for w in image_set.warnings)
    good = load_folder(data, image_size=8, cache_root=tmp_path / "other")
    assert torch.equal(image_set.images, good.images)


def test_drawers_are_kept_beside_their_rows(tmp_path: Path):
    """Who drew each image (Omniglot) is stored with the entry, and a dropped row takes its drawer with it."""
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1).repeat(4, 2).repeat(4, 3)
    decode = lambda i: "unreadable" if i == 2 else images[i]  # noqa: E731
    plan = cache.Plan(
        items=range(6), labels=[0, 0, 0, 1, 1, 1], class_names=("a", "b"), prepare=lambda: cache.Decoder((1, 4, 4), decode, workers=1),
        drawers=[11, 12, 13, 14, 15, 16],
    )  # fmt: skip
    source = cache.Source("drawn", "k1", None, tmp_path / "c")
    built = cache.load_cached(source, lambda: plan)
    cache._VERIFIED.clear()
    read = cache.load_cached(source, lambda: pytest.fail("rebuilt"))
    for image_set in (built, read):
        assert image_set.drawers.tolist() == [11, 12, 14, 15, 16] and image_set.images[:, 0, 0, 0].tolist() == [0, 1, 3, 4, 5]
    assert cache.load_cached(cache.Source("plain", "k2", None, tmp_path / "c"), lambda: replace(plan, drawers=None)).drawers is None
