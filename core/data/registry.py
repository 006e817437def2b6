"""Datasets by name. Each loader returns an ImageSet; heavy imports stay inside the loaders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.data.base import CIFAR100_STATS, IMAGENET_STATS, DataError, ImageSet, Normalisation
from core.data.cache import NO_HOOKS, Hooks

Loader = Callable[[Path | None, int, bool, Hooks], ImageSet]


def _glyphs(data_dir: Path | None, image_size: int, download: bool, hooks: Hooks) -> ImageSet:
    from core.data.glyphs import load_glyphs

    return load_glyphs(image_size=image_size)


def _omniglot(data_dir: Path | None, image_size: int, download: bool, hooks: Hooks) -> ImageSet:
    from core.data.omniglot import load_omniglot

    return load_omniglot(data_dir, image_size=image_size, download=download, hooks=hooks)


def _folder(data_dir: Path | None, image_size: int, download: bool, hooks: Hooks) -> ImageSet:
    from core.data.folder import load_folder

    if data_dir is None:
        raise DataError("the folder dataset needs a data folder: a directory with one sub-folder of images per class", "data_dir")
    return load_folder(data_dir, image_size=image_size, hooks=hooks)


def _mini_imagenet(data_dir: Path | None, image_size: int, download: bool, hooks: Hooks) -> ImageSet:
    from core.data.imagenet import load_mini_imagenet

    return load_mini_imagenet(data_dir, image_size, hooks=hooks)


def _tiered_imagenet(data_dir: Path | None, image_size: int, download: bool, hooks: Hooks) -> ImageSet:
    from core.data.imagenet import load_tiered_imagenet

    return load_tiered_imagenet(data_dir, image_size, hooks=hooks)


def _cifar_fs(data_dir: Path | None, image_size: int, download: bool, hooks: Hooks) -> ImageSet:
    from core.data.cifar import load_cifar_fs

    return load_cifar_fs(data_dir, image_size, download, hooks=hooks)


def _fc100(data_dir: Path | None, image_size: int, download: bool, hooks: Hooks) -> ImageSet:
    from core.data.cifar import load_fc100

    return load_fc100(data_dir, image_size, download, hooks=hooks)


def _cub(data_dir: Path | None, image_size: int, download: bool, hooks: Hooks) -> ImageSet:
    from core.data.cub import load_cub

    return load_cub(data_dir, image_size, hooks=hooks)


DATASETS: dict[str, Loader] = {
    "glyphs": _glyphs,
    "omniglot": _omniglot,
    "folder": _folder,
    "mini_imagenet": _mini_imagenet,
    "tiered_imagenet": _tiered_imagenet,
    "cifar_fs": _cifar_fs,
    "fc100": _fc100,
    "cub": _cub,
}
DEFAULT_DATASET = "glyphs"
BENCHMARKS = ("mini_imagenet", "tiered_imagenet", "cifar_fs", "fc100", "cub")  # named benchmarks with their published splits
# the size each dataset is used at unless asked otherwise: 84 as in the papers for the ImageNet-like sets, CIFAR's native 32
DEFAULT_IMAGE_SIZES = {"mini_imagenet": 84, "tiered_imagenet": 84, "cub": 84, "cifar_fs": 32, "fc100": 32}
NORMALISATIONS = {
    "mini_imagenet": IMAGENET_STATS,
    "tiered_imagenet": IMAGENET_STATS,
    "cub": IMAGENET_STATS,  # as Chen et al. did
    "cifar_fs": CIFAR100_STATS,
    "fc100": CIFAR100_STATS,
}


def default_image_size(name: str) -> int:
    """The image size a dataset is used at when none is given (28 for the greyscale sets and user folders)."""
    return DEFAULT_IMAGE_SIZES.get(name, 28)


def normalisation_of(name: str) -> Normalisation | None:
    """The normalisation a dataset's images get when they become floats (also for images a trained run predicts on)."""
    return NORMALISATIONS.get(name)


def load_dataset(
    name: str, data_dir: str | Path | None = None, image_size: int | None = None, download: bool = False, hooks: Hooks = NO_HOOKS
) -> ImageSet:
    """Load a dataset by registry name (decoded once into the checked on-disk cache, then memory-mapped).

    image_size None: the dataset's default (default_image_size). hooks: a progress callback for the
    first decode (the CLI draws a bar) and notices such as a cache rebuilt because its sources changed.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}", "dataset")
    size = default_image_size(name) if image_size is None else image_size
    if not 8 <= size <= 256:
        raise DataError(f"use images of 8 to 256 pixels (got {size})", "image_size")
    return DATASETS[name](Path(data_dir).expanduser() if data_dir else None, size, download, hooks)
