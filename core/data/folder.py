"""The user's own images: one sub-folder per class (or group/class/), decoded once and cached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.base import DataError, ImageSet, Normalisation
from core.data.cache import NO_HOOKS, Decoder, Hooks, Plan, Source, cache_key, load_cached
from core.data.fingerprint import Sources
from core.data.images import GREY_MODES, IMAGE_EXTENSIONS, header_mode, is_image_file, load_square, parallel_map

DECODER = "flatten-crop-lanczos-v2"  # in the cache key: change it when decoding changes what comes out
LAYOUT = "one sub-folder of images per class, e.g. data/cats/*.jpg and data/dogs/*.jpg"
EXTENSIONS = "/".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
_SKIPPED_DIRS = frozenset({"__MACOSX"})  # macOS zip debris, never a class


@dataclass(frozen=True)
class ClassFolder:
    """One class: its name, its group (the first folder level of a group/class/ layout) and its image files."""

    name: str
    group: str | None
    files: tuple[Path, ...]


def load_folder(data_dir: str | Path, image_size: int = 28, cache_root: Path | None = None, hooks: Hooks = NO_HOOKS) -> ImageSet:
    """Load a folder with one sub-folder of images per class, decoded once into the checked cache.

    Images are centre-cropped to a square and resized to (image_size, image_size): uint8
    (n, 1, s, s) when every image is greyscale, else (n, 3, s, s) RGB. A group/class/images
    layout makes the first level the class groups. Unreadable images are skipped and named
    in ImageSet.warnings; bad layouts raise DataError saying what to change.
    """
    root = _check_root(Path(data_dir).expanduser())
    classes = _find_classes(root)
    files = [f for c in classes for f in c.files]
    key = cache_key(dataset="folder", root=str(root.resolve()), image_size=image_size, decoder=DECODER)
    source = Source("folder", key, Sources(root, tuple(files)), cache_root)
    return load_cached(source, lambda: class_plan("folder", root, classes, image_size), hooks)


def _check_root(root: Path) -> Path:
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; point the data folder at a directory with {LAYOUT}", "data_dir")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a directory; point the data folder at a directory with {LAYOUT}", "data_dir")
    return root


def _visible(path: Path) -> bool:
    # dot-files include macOS "._x.jpg" shadows, which would each be reported as unreadable
    return not path.name.startswith(".") and path.name not in _SKIPPED_DIRS


def subfolders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and _visible(p))


def image_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and _visible(p) and is_image_file(p))


def _find_classes(root: Path) -> list[ClassFolder]:
    top = subfolders(root)
    if not top:
        loose = len(image_files(root))
        found = f" (found {loose} images directly in it: move them into one sub-folder per class)" if loose else ""
        raise DataError(f"{root} has no class sub-folders{found}; it needs {LAYOUT}")
    if all(not image_files(d) and subfolders(d) for d in top):  # group/class/images
        classes = [ClassFolder(f"{g.name}/{c.name}", g.name, tuple(image_files(c))) for g in top for c in subfolders(g)]
    else:
        classes = [ClassFolder(d.name, None, tuple(image_files(d))) for d in top]
    empty = [c.name for c in classes if not c.files]
    if empty:
        listed = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise DataError(f"{root}: class folder(s) with no {EXTENSIONS} images: {listed}; add images to them or move them out")
    if len(classes) < 2:
        raise DataError(f"{root} has only 1 class folder ({classes[0].name}); few-shot tasks need at least 2 classes, so add sub-folders")
    return classes


def _decode(path: Path, size: int, channels: int) -> np.ndarray | str:
    """uint8 (channels, size, size), or why the file could not be used."""
    try:
        return load_square(path, size, channels)[0]
    except Exception as exc:  # any failure inside PIL on a user's file means "unreadable"; it is reported, not hidden
        return f"{type(exc).__name__}: {exc}"


def _channels(files: list[Path]) -> int:
    """1 when every file declares a single-channel mode (read from headers only), else 3."""
    modes = parallel_map(header_mode, files)
    return 1 if all(m is None or m in GREY_MODES for m in modes) else 3


def class_plan(
    name: str,
    root: Path,
    classes: list[ClassFolder],
    size: int,
    splits: tuple[str, ...] | None = None,
    normalisation: Normalisation | None = None,
    channels: int | None = None,
    warnings: tuple[str, ...] = (),
) -> Plan:
    """How a list of class folders becomes a cache entry: every file an item, its class the label.

    channels None: 1 when every file is single-channel (from the headers), else 3.
    """
    files = [f for c in classes for f in c.files]

    def prepare() -> Decoder:
        c = channels or _channels(files)
        return Decoder((c, size, size), lambda path: _decode(path, size, c))

    return Plan(
        items=files,
        labels=[i for i, c in enumerate(classes) for _ in c.files],
        class_names=tuple(c.name for c in classes),
        prepare=prepare,
        class_groups=tuple(str(c.group) for c in classes) if classes[0].group is not None else None,
        class_splits=splits,
        source=f"{name}: {root}",
        warnings=warnings,
        normalisation=normalisation,
        accept=lambda kept, notes: _check_kept(root, kept, notes, n_files=len(files)),
    )


def _check_kept(root: Path, kept: list[str], warnings: list[str], n_files: int) -> None:
    if not kept:
        first = warnings[0]
        raise DataError(f"none of the {n_files} images under {root} could be read (first: {first}); check that they are real image files")
    if len(kept) < 2:
        need = "few-shot tasks need at least 2, so fix or replace the others"
        raise DataError(f"only class '{kept[0]}' in {root} has readable images; {need}")
