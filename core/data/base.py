"""The one form every dataset takes: a uint8 image tensor (memory-mapped from the cache) and class ids."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import UserError

SPLIT_NAMES = ("train", "val", "test")


class DataError(UserError):
    """A dataset cannot be loaded or used as asked; the message says what to change."""


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean and std a dataset's images are standardised with when they become floats."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean or min(self.std) <= 0:
            raise DataError(f"normalisation needs one mean and one positive std per channel, got {self.mean} / {self.std}")

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """float (..., c, h, w) in [0, 1] -> standardised, in place."""
        shape = (len(self.mean), 1, 1)
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(shape)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(shape)
        return images.sub_(mean).div_(std)


@dataclass(frozen=True)
class ImageSet:
    """A labelled image collection held as tensors.

    images: uint8 (n, c, h, w); strokes/foreground bright, background dark where that applies.
        Usually a read-only memory map of the on-disk cache: index it (copies the rows), never write into it.
    labels: int64 (n,), class ids in 0..n_classes-1.
    class_names: one name per class id.
    class_groups: one group per class id (Omniglot alphabet), or None when the data has none.
    source: where it came from, for display and for cache keys.
    warnings: things the user should know about the load (skipped files, a rebuilt cache), never silent.
    class_splits: the split ("train" / "val" / "test") each class belongs to when the dataset brings its
        standard split (the named benchmarks), else None and split_classes draws one.
    normalisation: mean / std applied where the images become floats, or None for plain [0, 1].
    drawers: int64 (n,), who drew each image (Omniglot: the file name's suffix, 1..20 within an alphabet),
        or None when the data does not say.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    class_groups: tuple[str, ...] | None = None
    source: str = ""
    warnings: tuple[str, ...] = ()  # e.g. files skipped as unreadable, shown to the user
    class_splits: tuple[str, ...] | None = None
    normalisation: Normalisation | None = None
    drawers: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"{self.name}: images must be uint8 (n, c, h, w), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(f"{self.name}: {self.labels.numel()} labels for {self.images.shape[0]} images")
        if self.class_groups is not None and len(self.class_groups) != len(self.class_names):
            raise DataError(f"{self.name}: {len(self.class_groups)} groups for {len(self.class_names)} classes")
        if self.class_splits is not None and (len(self.class_splits) != len(self.class_names) or set(self.class_splits) - set(SPLIT_NAMES)):
            raise DataError(f"{self.name}: class_splits must name one of {SPLIT_NAMES} per class")
        if self.normalisation is not None and len(self.normalisation.mean) != self.images.shape[1]:
            raise DataError(f"{self.name}: normalisation has {len(self.normalisation.mean)} channels, images {self.images.shape[1]}")
        if self.drawers is not None and self.drawers.shape != self.labels.shape:
            raise DataError(f"{self.name}: {self.drawers.numel()} drawers for {self.images.shape[0]} images")
        if self.images.shape[0] == 0:
            raise DataError(f"{self.name}: no images found in {self.source or 'the source'}")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def class_counts(self) -> torch.Tensor:
        """(n_classes,) number of images per class."""
        return torch.bincount(self.labels, minlength=self.n_classes)

    def indices_of(self, class_id: int) -> torch.Tensor:
        """(m,) image indices of one class, in storage order."""
        return (self.labels == class_id).nonzero().flatten()


IMAGENET_STATS = Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # ImageNet's channel statistics
CIFAR100_STATS = Normalisation((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))  # CIFAR-100's


def cache_dir() -> Path:
    """Where decoded datasets are cached: $METASCOPE_CACHE or ~/.cache/metascope."""
    path = Path(os.environ.get("METASCOPE_CACHE", Path.home() / ".cache" / "metascope"))
    path.mkdir(parents=True, exist_ok=True)
    return path
