"""Exports of what the Embeddings page shows: TensorBoard projector files and 2-D coordinates as CSV.

The projector reads tensors.tsv (one point per row, values tab-separated), metadata.tsv (a
header row only when there is more than one column), sprite.png (a square grid of thumbnails in
point order) and projector_config.pbtxt tying them together.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SPRITE_MAX_PX = 8192  # the projector refuses larger sprite images
PROJECTOR_FOLDER = "metascope-projector"


def _clean(value: object) -> str:
    """A metadata cell: tabs and newlines would break the TSV's rows and columns."""
    return " ".join(str(value).split())


def tensors_tsv(z: np.ndarray) -> bytes:
    """(n, d) -> n lines of d tab-separated values."""
    buffer = io.StringIO()
    np.savetxt(buffer, np.asarray(z, dtype=np.float32), delimiter="\t", fmt="%.6g")
    return buffer.getvalue().encode()


def metadata_tsv(columns: Mapping[str, Sequence[object]]) -> bytes:
    """Columns of equal length n -> TSV; a header row when there is more than one column (the projector's rule)."""
    names = list(columns)
    if not names:
        raise ValueError("metadata needs at least one column")
    lengths = {len(columns[name]) for name in names}
    if len(lengths) != 1:
        raise ValueError(f"metadata columns differ in length: { {name: len(columns[name]) for name in names} }")
    rows = zip(*(columns[name] for name in names), strict=True)
    lines = (["\t".join(map(_clean, names))] if len(names) > 1 else []) + ["\t".join(map(_clean, row)) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def sprite_geometry(n: int, image_size: int) -> tuple[int, int]:
    """(grid side, thumbnail side): ceil(sqrt(n)) thumbnails a side, shrunk so the sprite fits SPRITE_MAX_PX."""
    side = max(1, math.ceil(math.sqrt(n)))
    return side, max(1, min(image_size, SPRITE_MAX_PX // side))


def sprite_png(images: torch.Tensor | np.ndarray) -> tuple[bytes, int]:
    """uint8 images (n, c, h, w) -> (PNG of a square grid of thumbnails in row-major point order, thumbnail side).

    Unused cells at the end stay black. Images are made square (h x h) by resizing where w != h.
    """
    x = torch.as_tensor(np.asarray(images))
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (n, 1 or 3, h, w), got {x.dtype} {tuple(x.shape)}")
    n, c, h, w = x.shape
    side, thumb = sprite_geometry(n, h)
    if (thumb, thumb) != (h, w):  # area averaging keeps thin strokes visible when shrinking
        x = F.interpolate(x.float(), size=(thumb, thumb), mode="area").round().clamp(0, 255).to(torch.uint8)
    cells = torch.zeros(side * side, c, thumb, thumb, dtype=torch.uint8)
    cells[:n] = x
    grid = cells.reshape(side, side, c, thumb, thumb).permute(0, 3, 1, 4, 2).reshape(side * thumb, side * thumb, c).numpy()
    image = Image.fromarray(grid[..., 0], mode="L") if c == 1 else Image.fromarray(grid, mode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), thumb


def projector_config(n: int, d: int, thumb: int | None, name: str = "metascope") -> bytes:
    """projector_config.pbtxt for the files written by projector_files (sprite only when thumb is given)."""
    lines = [
        "embeddings {",
        f'  tensor_name: "{_clean(name)}"',
        f"  tensor_shape: {n}",
        f"  tensor_shape: {d}",
        '  tensor_path: "tensors.tsv"',
        '  metadata_path: "metadata.tsv"',
    ]
    if thumb is not None:
        lines += ["  sprite {", '    image_path: "sprite.png"', f"    single_image_dim: {thumb}", f"    single_image_dim: {thumb}", "  }"]
    return ("\n".join(lines + ["}"]) + "\n").encode()


def projector_files(
    z: np.ndarray, metadata: Mapping[str, Sequence[object]], images: torch.Tensor | np.ndarray | None = None, name: str = "metascope"
) -> dict[str, bytes]:
    """The projector's files by name, for embeddings z (n, d), metadata columns of length n, uint8 images (n, c, h, w)."""
    n, d = np.asarray(z).shape
    if any(len(v) != n for v in metadata.values()):
        raise ValueError(f"every metadata column needs {n} values, one per point")
    files = {"tensors.tsv": tensors_tsv(z), "metadata.tsv": metadata_tsv(metadata)}
    thumb = None
    if images is not None:
        if len(images) != n:
            raise ValueError(f"{len(images)} images for {n} points")
        files["sprite.png"], thumb = sprite_png(images)
    files["projector_config.pbtxt"] = projector_config(n, d, thumb, name)
    return files


def zip_files(files: Mapping[str, bytes], folder: str = PROJECTOR_FOLDER) -> bytes:
    """A zip holding `files` inside `folder`/ (unzipping never scatters files into the current directory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file_name, data in files.items():
            archive.writestr(f"{folder}/{file_name}", data)
    return buffer.getvalue()


def coordinates_csv(coords: np.ndarray, columns: Mapping[str, Sequence[object]]) -> bytes:
    """2-D coordinates (n, 2) and metadata columns -> CSV with a header x, y, <columns>."""
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"expected coordinates (n, 2), got {coords.shape}")
    if any(len(v) != coords.shape[0] for v in columns.values()):
        raise ValueError(f"every column needs {coords.shape[0]} values, one per point")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["x", "y", *columns])
    for i, (x, y) in enumerate(coords.tolist()):
        writer.writerow([f"{x:.6g}", f"{y:.6g}", *(columns[c][i] for c in columns)])
    return buffer.getvalue().encode()
