"""Datasets by name. Each loader returns an ImageSet; heavy imports stay inside the loaders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.data.base import DataError, ImageSet


def _glyphs(data_dir: Path | None, image_size: int, download: bool) -> ImageSet:
    from core.data.glyphs import load_glyphs

    return load_glyphs(image_size=image_size)


def _omniglot(data_dir: Path | None, image_size: int, download: bool) -> ImageSet:
    from core.data.omniglot import load_omniglot

    return load_omniglot(data_dir, image_size=image_size, download=download)


def _folder(data_dir: Path | None, image_size: int, download: bool) -> ImageSet:
    from core.data.folder import load_folder

    if data_dir is None:
        raise DataError("the folder dataset needs a data folder: a directory with one sub-folder of images per class", "data_dir")
    return load_folder(data_dir, image_size=image_size)


DATASETS: dict[str, Callable[[Path | None, int, bool], ImageSet]] = {
    "glyphs": _glyphs,
    "omniglot": _omniglot,
    "folder": _folder,
}
DEFAULT_DATASET = "glyphs"


def load_dataset(name: str, data_dir: str | Path | None = None, image_size: int = 28, download: bool = False) -> ImageSet:
    """Load a dataset by registry name (decoded once, then cached on disk)."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}", "dataset")
    if not 8 <= image_size <= 256:
        raise DataError(f"use images of 8 to 256 pixels (got {image_size})", "image_size")
    return DATASETS[name](Path(data_dir).expanduser() if data_dir else None, image_size, download)
