"""Image decoding shared by the file-based loaders: PIL in, uint8 (c, h, w) arrays out."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps

T = TypeVar("T")
R = TypeVar("R")

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"})
RESAMPLE = Image.Resampling.LANCZOS  # antialiased both when shrinking and when enlarging


def is_image_file(path: Path) -> bool:
    """True for a file with one of IMAGE_EXTENSIONS, in any letter case."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def open_image(source: bytes | Path, draft_size: int | None = None, upright: bool = False) -> Image.Image:
    """Open and fully decode an image, so a corrupt file fails here and not later.

    draft_size: lets JPEG decode at a reduced scale that still covers this many pixels a side,
    which makes large photos several times cheaper to load.
    upright: apply the EXIF orientation, since phone photos store their rotation there.
    """
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:  # closes multi-frame files too
        if draft_size is not None and image.format == "JPEG":
            image.draft(image.mode, (draft_size, draft_size))
        image.load()
    if upright:
        ImageOps.exif_transpose(image, in_place=True)
    return image


def is_grey(image: Image.Image) -> bool:
    """True when the image has a single intensity channel (with or without alpha)."""
    return image.mode in GREY_MODES


def square_resize(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square, then resize to (size, size) with antialiasing."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # crop before resizing so the filter never reaches pixels outside the square
    return image.crop((left, top, left + side, top + side)).resize((size, size), RESAMPLE)


def to_array(image: Image.Image, channels: int, invert: bool = False) -> np.ndarray:
    """uint8 (channels, h, w) from a PIL image; channels is 1 (grey) or 3 (RGB)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    if invert:
        array = 255 - array
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def stack(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (n, c, h, w) from n equally shaped uint8 (c, h, w) arrays."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(arrays)))


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> list[R]:
    """fn over items in a thread pool, results in input order.

    Threads suffice because PIL releases the GIL while it decodes and resizes.
    """
    items = list(items)
    workers = workers or min(8, os.cpu_count() or 1)
    if workers <= 1 or len(items) < 64:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))
