"""Image strips for episodes: small images upscaled with nearest neighbour so pixels stay sharp."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

GAP_GREY = 128  # the gap between images: mid grey reads on dark and light images alike


def to_hwc(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 (n, c, h, w) -> uint8 (n, h, w, c) with c 1 or 3."""
    array = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (n, 1 or 3, h, w), got {array.dtype} {array.shape}")
    return array.transpose(0, 2, 3, 1)


def image_strip(images: torch.Tensor | np.ndarray, scale: int = 3, gap: int = 2) -> Image.Image:
    """uint8 (n, c, h, w) -> one PIL image: the n images side by side, each `scale` times larger.

    Upscaling is by pixel repetition (nearest neighbour): a browser scaling a 28x28 image
    would smooth it into a blur.
    """
    hwc = to_hwc(images).repeat(scale, axis=1).repeat(scale, axis=2)  # (n, h*s, w*s, c)
    n, h, w, c = hwc.shape
    canvas = np.full((h, n * w + (n - 1) * gap, c), GAP_GREY, dtype=np.uint8)
    for i in range(n):
        canvas[:, i * (w + gap) : i * (w + gap) + w] = hwc[i]
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode="L" if c == 1 else "RGB")


def thumbnail(image: torch.Tensor | np.ndarray, scale: int = 2) -> Image.Image:
    """uint8 (c, h, w) -> PIL image upscaled `scale` times."""
    return image_strip(image[None], scale=scale, gap=0)


def png_data_uri(image: torch.Tensor | np.ndarray) -> str:
    """uint8 (c, h, w) -> 'data:image/png;base64,...' at its own size (the browser upscales it with pixelated rendering)."""
    buffer = io.BytesIO()
    thumbnail(image, scale=1).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
