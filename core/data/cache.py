"""Decode once, then load from disk: ImageSets cached as safetensors keyed by their source."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.atomic import atomic_write, atomic_write_text
from core.data.base import ImageSet, cache_dir

CACHE_VERSION = 1  # bump when a loader changes what it produces


def cache_key(**parts: object) -> str:
    """A short stable hash of the things that determine a dataset's content."""
    blob = json.dumps({"v": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached(name: str, key: str, build: Callable[[], ImageSet], root: Path | None = None) -> ImageSet:
    """Return the ImageSet cached under (name, key), building and caching it on a miss.

    A damaged cache entry is rebuilt rather than trusted.
    """
    folder = (root or cache_dir()) / "datasets"
    tensors_path, meta_path = folder / f"{name}-{key}.safetensors", folder / f"{name}-{key}.json"
    if tensors_path.exists() and meta_path.exists():
        try:
            return _read(name, tensors_path, meta_path)
        except (OSError, ValueError, KeyError, SafetensorError):
            pass  # fall through and rebuild
    image_set = build()
    _write(image_set, tensors_path, meta_path)
    return image_set


def _write(image_set: ImageSet, tensors_path: Path, meta_path: Path) -> None:
    tensors = {"images": image_set.images.contiguous(), "labels": image_set.labels.contiguous()}
    if image_set.drawers is not None:
        tensors["drawers"] = image_set.drawers.contiguous()
    atomic_write(tensors_path, lambda tmp: save_file(tensors, str(tmp)))
    meta = {
        "class_names": list(image_set.class_names),
        "class_groups": None if image_set.class_groups is None else list(image_set.class_groups),
        "source": image_set.source,
        "warnings": list(image_set.warnings),
    }
    atomic_write_text(meta_path, json.dumps(meta))


def _read(name: str, tensors_path: Path, meta_path: Path) -> ImageSet:
    tensors = load_file(str(tensors_path))
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    groups = meta["class_groups"]
    return ImageSet(
        name=name,
        images=tensors["images"],
        labels=tensors["labels"].to(torch.int64),
        class_names=tuple(meta["class_names"]),
        class_groups=None if groups is None else tuple(groups),
        source=meta["source"],
        warnings=tuple(meta.get("warnings", ())),
        drawers=tensors["drawers"].to(torch.int64) if "drawers" in tensors else None,
    )
