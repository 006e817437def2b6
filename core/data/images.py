"""Image decoding shared by the file-based loaders: PIL in, uint8 (c, h, w) arrays out, read faithfully.

Faithfully means the pixels training sees are the ones a viewer shows: 16-bit images are scaled
to 8 bits (not clipped to white), transparent pixels are laid over white (not left as whatever
colour they hide), CMYK goes through its ICC profile when it has one, palettes are expanded.
Images that would cost unbounded memory (decompression bombs) or are too small to resize
faithfully are refused with a reason, like unreadable ones.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps

T = TypeVar("T")
R = TypeVar("R")

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})  # PIL's "I" holds 16-bit PNG/TIFF samples too
RESAMPLE = Image.Resampling.LANCZOS  # antialiased both when shrinking and when enlarging
MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb threshold (~ a 9459 x 9459 image, 256 MiB as RGB)
MIN_SIDE = 4  # pixels: a thinner image has nothing to resize from (smaller ones above it are enlarged)
BACKGROUND = 255  # transparent pixels become white, as a viewer on a white page shows them


class ImageRefused(ValueError):
    """An image that decodes but is not used (too large to decode safely, too small); the message says why."""


def is_image_file(path: Path) -> bool:
    """True for a file with one of IMAGE_EXTENSIONS, in any letter case."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def check_size(width: int, height: int) -> None:
    """Raise ImageRefused for a decompression bomb or an image too thin to resize."""
    if width * height > MAX_PIXELS:
        raise ImageRefused(
            f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is over the {MAX_PIXELS / 1e6:.0f}-megapixel "
            "limit and could exhaust memory when decoded (a decompression bomb?); shrink the image or remove it"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageRefused(f"{width}x{height} pixels is too small to resize faithfully; use images at least {MIN_SIDE} pixels a side")


def open_image(source: bytes | Path, draft_size: int | None = None, upright: bool = False) -> Image.Image:
    """Open and fully decode an image, so a corrupt file fails here and not later.

    The declared size is checked before any pixel is decoded (ImageRefused for a bomb).
    draft_size: lets JPEG decode at a reduced scale that still covers this many pixels a side,
    which makes large photos several times cheaper to load.
    upright: apply the EXIF orientation, since phone photos store their rotation there.
    """
    try:
        opened = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Image.DecompressionBombError as exc:  # PIL's own hard limit, met before ours when the header is huge
        raise ImageRefused(f"refused as a decompression bomb ({exc}); shrink the image or remove it") from exc
    with opened as image:  # closes multi-frame files too
        check_size(*image.size)
        if draft_size is not None and image.format == "JPEG":
            image.draft(image.mode, (draft_size, draft_size))
        image.load()
    if upright:
        ImageOps.exif_transpose(image, in_place=True)
    return image


def is_grey(image: Image.Image) -> bool:
    """True when the image has a single intensity channel (with or without alpha)."""
    return image.mode in GREY_MODES


def flatten(image: Image.Image) -> Image.Image:
    """The image as training sees it: mode "L" for single-channel images, "RGB" for everything else.

    16-bit samples are scaled by 255/65535; float images ("F") are taken as [0, 1]; alpha is
    composited over white; CMYK is converted through its embedded ICC profile when present.
    """
    mode = image.mode
    if mode in ("L", "RGB") and "transparency" not in image.info:
        return image
    if mode in SIXTEEN_BIT_MODES:
        return _grey_from(np.asarray(image).astype(np.float64) / 257.0)
    if mode == "F":
        return _grey_from(np.asarray(image, dtype=np.float64) * 255.0)
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode in ("LA", "La") or (mode in ("1", "L") and "transparency" in image.info):
        return _over_white(image.convert("LA"), "L")
    if mode in ("RGBA", "RGBa", "PA") or "transparency" in image.info:
        return _over_white(image.convert("RGBA"), "RGB")
    return image.convert("L" if mode in GREY_MODES else "RGB")


def _grey_from(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def _over_white(image: Image.Image, mode: str) -> Image.Image:
    """Composite an "LA" or "RGBA" image over the white BACKGROUND, rounding to nearest."""
    array = np.asarray(image, dtype=np.uint32)
    colour, alpha = array[..., :-1], array[..., -1:]
    out = (colour * alpha + BACKGROUND * (255 - alpha) + 127) // 255
    return Image.fromarray(out.astype(np.uint8).squeeze(-1) if mode == "L" else out.astype(np.uint8), mode)


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the plain conversion below rather than lose the image
    return image.convert("RGB")


def square_resize(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square, then resize to (size, size) with antialiasing."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # crop before resizing so the filter never reaches pixels outside the square
    return image.crop((left, top, left + side, top + side)).resize((size, size), RESAMPLE)


def to_array(image: Image.Image, channels: int, invert: bool = False) -> np.ndarray:
    """uint8 (channels, h, w) from a PIL image, flattened faithfully first; channels is 1 (grey) or 3 (RGB)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    array = np.asarray(flatten(image).convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    if invert:
        array = 255 - array
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_square(source: bytes | Path, size: int, channels: int | None = None) -> tuple[np.ndarray, bool]:
    """Decode an image file the way the folder datasets do -> (uint8 (c, size, size), was it grey).

    Flattened (alpha, 16 bit, CMYK, palettes) before the centre crop and resize, so filtering never
    mixes in hidden colours. channels None keeps the image's own (1 if grey, else 3).
    """
    image = flatten(open_image(source, draft_size=size, upright=True))
    grey = image.mode == "L"
    return to_array(square_resize(image, size), channels or (1 if grey else 3)), grey


def header_mode(path: Path) -> str | None:
    """The PIL mode an image file declares, reading its header only; None when unreadable."""
    try:
        with Image.open(path) as image:
            return image.mode
    except Exception:  # an unreadable file is reported when it is decoded; here it only must not count as colour
        return None


def stack(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (n, c, h, w) from n equally shaped uint8 (c, h, w) arrays."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(arrays)))


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> list[R]:
    """fn over items in a thread pool of every core (or `workers`), results in input order.

    Threads suffice because PIL, zlib and hashlib release the GIL while they work.
    """
    items = list(items)
    workers = workers or cpu_count()
    if workers <= 1 or len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))
