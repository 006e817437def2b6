"""The one in-memory form every dataset takes: a uint8 image tensor and class ids."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch


class DataError(ValueError):
    """A dataset cannot be loaded or used as asked; the message says what to change."""


@dataclass(frozen=True)
class ImageSet:
    """A labelled image collection held as tensors.

    images: uint8 (n, c, h, w); strokes/foreground bright, background dark where that applies.
    labels: int64 (n,), class ids in 0..n_classes-1.
    class_names: one name per class id.
    class_groups: one group per class id (Omniglot alphabet), or None when the data has none.
    source: where it came from, for display and for cache keys.
    warnings: things the user should know about the load (skipped files), never silent.
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
    drawers: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"{self.name}: images must be uint8 (n, c, h, w), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(f"{self.name}: {self.labels.numel()} labels for {self.images.shape[0]} images")
        if self.class_groups is not None and len(self.class_groups) != len(self.class_names):
            raise DataError(f"{self.name}: {len(self.class_groups)} groups for {len(self.class_names)} classes")
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


def cache_dir() -> Path:
    """Where decoded datasets are cached: $METASCOPE_CACHE or ~/.cache/metascope."""
    path = Path(os.environ.get("METASCOPE_CACHE", Path.home() / ".cache" / "metascope"))
    path.mkdir(parents=True, exist_ok=True)
    return path
