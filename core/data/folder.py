"""The user's own images: one sub-folder per class (or group/class/), decoded once and cached."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data.base import DataError, ImageSet
from core.data.cache import cache_key, cached
from core.data.images import IMAGE_EXTENSIONS, is_grey, is_image_file, open_image, parallel_map, square_resize, stack, to_array

DECODER = "crop-lanczos-v1"  # in the cache key: change it when decoding changes what comes out
LAYOUT = "one sub-folder of images per class, e.g. data/cats/*.jpg and data/dogs/*.jpg"
EXTENSIONS = "/".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
_SKIPPED_DIRS = frozenset({"__MACOSX"})  # macOS zip debris, never a class


@dataclass(frozen=True)
class _Class:
    name: str
    group: str | None
    files: tuple[Path, ...]


def load_folder(data_dir: str | Path, image_size: int = 28, cache_root: Path | None = None) -> ImageSet:
    """Load a folder with one sub-folder of images per class, decoded once and then cached.

    Images are centre-cropped to a square and resized to (image_size, image_size): uint8
    (n, 1, s, s) when every image is greyscale, else (n, 3, s, s) RGB. A group/class/images
    layout makes the first level the class groups. Unreadable images are skipped and named
    in ImageSet.warnings; bad layouts raise DataError saying what to change.
    """
    root = _check_root(Path(data_dir).expanduser())
    classes = _find_classes(root)
    key = cache_key(dataset="folder", root=str(root.resolve()), image_size=image_size, decoder=DECODER, files=_fingerprint(root, classes))
    return cached("folder", key, lambda: _build(root, classes, image_size), cache_root)


def _check_root(root: Path) -> Path:
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; point the data folder at a directory with {LAYOUT}", "data_dir")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a directory; point the data folder at a directory with {LAYOUT}", "data_dir")
    return root


def _visible(path: Path) -> bool:
    # dot-files include macOS "._x.jpg" shadows, which would each be reported as unreadable
    return not path.name.startswith(".") and path.name not in _SKIPPED_DIRS


def _subfolders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and _visible(p))


def _images(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and _visible(p) and is_image_file(p))


def _find_classes(root: Path) -> list[_Class]:
    top = _subfolders(root)
    if not top:
        loose = len(_images(root))
        found = f" (found {loose} images directly in it: move them into one sub-folder per class)" if loose else ""
        raise DataError(f"{root} has no class sub-folders{found}; it needs {LAYOUT}")
    if all(not _images(d) and _subfolders(d) for d in top):  # group/class/images
        classes = [_Class(f"{g.name}/{c.name}", g.name, tuple(_images(c))) for g in top for c in _subfolders(g)]
    else:
        classes = [_Class(d.name, None, tuple(_images(d))) for d in top]
    empty = [c.name for c in classes if not c.files]
    if empty:
        listed = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise DataError(f"{root}: class folder(s) with no {EXTENSIONS} images: {listed}; add images to them or move them out")
    if len(classes) < 2:
        raise DataError(f"{root} has only 1 class folder ({classes[0].name}); few-shot tasks need at least 2 classes, so add sub-folders")
    return classes


def _fingerprint(root: Path, classes: list[_Class]) -> str:
    """Changes whenever a file is added, removed, renamed or rewritten (relative path, size, mtime)."""
    digest = hashlib.sha256()
    for cls in classes:
        for path in cls.files:
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _decode(path: Path, size: int) -> tuple[np.ndarray, bool] | str:
    """(uint8 (c, size, size) with c = 1 for greyscale else 3, is_grey), or why it could not be read."""
    try:
        image = open_image(path, draft_size=size, upright=True)
        grey = is_grey(image)
        return to_array(square_resize(image.convert("L" if grey else "RGB"), size), channels=1 if grey else 3), grey
    except Exception as exc:  # any failure inside PIL on a user's file means "unreadable"; it is reported, not hidden
        return f"{type(exc).__name__}: {exc}"


def _build(root: Path, classes: list[_Class], size: int) -> ImageSet:
    files = [f for c in classes for f in c.files]
    results = dict(zip(files, parallel_map(lambda path: _decode(path, size), files), strict=True))
    warnings = [f"skipped unreadable image: {path} ({r})" for path, r in results.items() if isinstance(r, str)]
    kept, decoded = [], []  # classes with at least one readable image, and those images
    for cls in classes:
        good = [r for r in (results[f] for f in cls.files) if not isinstance(r, str)]
        if good:
            kept.append(cls)
            decoded.append(good)
        else:
            warnings.append(f"left out class '{cls.name}': none of its {len(cls.files)} images could be read")
    _check_kept(root, kept, warnings, n_files=len(files))
    channels = 1 if all(grey for good in decoded for _, grey in good) else 3
    return ImageSet(
        name="folder",
        images=stack([a if a.shape[0] == channels else np.repeat(a, 3, axis=0) for good in decoded for a, _ in good]),
        labels=torch.tensor([i for i, good in enumerate(decoded) for _ in good], dtype=torch.int64),
        class_names=tuple(c.name for c in kept),
        class_groups=tuple(str(c.group) for c in kept) if kept[0].group is not None else None,
        source=f"folder: {root}",
        warnings=tuple(warnings),
    )


def _check_kept(root: Path, kept: list[_Class], warnings: list[str], n_files: int) -> None:
    if not kept:
        first = warnings[0]
        raise DataError(f"none of the {n_files} images under {root} could be read (first: {first}); check that they are real image files")
    if len(kept) < 2:
        need = "few-shot tasks need at least 2, so fix or replace the others"
        raise DataError(f"only class '{kept[0].name}' in {root} has readable images; {need}")
