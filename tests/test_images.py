"""Images read faithfully: 16-bit, palette, alpha and CMYK become the pixels a viewer shows; bombs and slivers are refused."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.folder import load_folder
from core.data.images import MAX_PIXELS, ImageRefused, load_square, open_image


def _square(path: Path, size: int = 4) -> np.ndarray:
    """(c, size, size) as the folder datasets decode the file."""
    return load_square(path, size)[0]


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path):
    values = np.array([[0, 257 * 64], [257 * 128, 65535]], dtype=np.uint16).repeat(4, 0).repeat(4, 1)  # 8x8, four levels
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")  # really stored with 16 bits
    pixels, grey = load_square(tmp_path / "deep.png", 8)
    assert grey and pixels.shape == (1, 8, 8)
    assert [pixels[0, 0, 0], pixels[0, 0, 4], pixels[0, 4, 0], pixels[0, 4, 4]] == [0, 64, 128, 255]


def test_palette_colours_are_expanded(tmp_path: Path):
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 200, 30, 60] + [0] * 762)
    image.save(tmp_path / "palette.png")
    assert _square(tmp_path / "palette.png")[:, 0, 0].tolist() == [200, 30, 60]


def test_palette_transparency_becomes_white(tmp_path: Path):
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 200, 30, 60] + [0] * 762)
    image.save(tmp_path / "clear.png", transparency=1)  # palette entry 1 fully transparent
    assert _square(tmp_path / "clear.png")[:, 0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("alpha", [0, 128, 255])
def test_alpha_is_composited_over_white(tmp_path: Path, alpha: int):
    Image.new("RGBA", (8, 8), (200, 0, 100, alpha)).save(tmp_path / "rgba.png")
    expected = [(c * alpha + 255 * (255 - alpha) + 127) // 255 for c in (200, 0, 100)]
    assert _square(tmp_path / "rgba.png")[:, 0, 0].tolist() == expected
    Image.new("LA", (8, 8), (40, alpha)).save(tmp_path / "la.png")
    pixels, grey = load_square(tmp_path / "la.png", 4)
    assert grey and pixels[0, 0, 0] == (40 * alpha + 255 * (255 - alpha) + 127) // 255


def test_cmyk_is_converted_to_rgb(tmp_path: Path):
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(tmp_path / "cyan.tif")  # pure cyan ink
    Image.new("CMYK", (8, 8), (0, 0, 0, 255)).save(tmp_path / "black.tif")  # pure black ink
    assert _square(tmp_path / "cyan.tif")[:, 0, 0].tolist() == [0, 255, 255]
    assert _square(tmp_path / "black.tif")[:, 0, 0].tolist() == [0, 0, 0]


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height pixels but holds almost nothing: what a decompression bomb looks like to a reader."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL warns between its limit and twice it
@pytest.mark.parametrize("side", [10_000, 40_000])  # over our limit; over twice PIL's own (it raises its own error first)
def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path, side: int):
    bomb = _png_header_only(tmp_path / "bomb.png", side, side)
    assert side * side > MAX_PIXELS and bomb.stat().st_size < 200
    with pytest.raises(ImageRefused, match="decompression bomb"):
        open_image(bomb)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bombs_and_slivers_in_a_folder_are_skipped_with_the_reason(tmp_path: Path):
    for name in ("a", "b"):
        (tmp_path / "d" / name).mkdir(parents=True)
        Image.new("RGB", (10, 10), (9, 9, 9)).save(tmp_path / "d" / name / "ok.png")
    _png_header_only(tmp_path / "d" / "a" / "bomb.png", 10_000, 10_000)
    Image.new("RGB", (2, 300), (9, 9, 9)).save(tmp_path / "d" / "b" / "sliver.png")
    image_set = load_folder(tmp_path / "d", image_size=8, cache_root=tmp_path / "c")
    assert image_set.class_counts().tolist() == [1, 1]
    bomb, sliver = (next(w for w in image_set.warnings if name in w) for name in ("bomb.png", "sliver.png"))
    assert "10000x10000 pixels (100 megapixels) is over the 89-megapixel limit" in bomb and "decompression bomb" in bomb
    assert "2x300 pixels is too small to resize faithfully" in sliver


def test_small_images_are_enlarged(tmp_path: Path):
    Image.new("RGB", (6, 6), (10, 200, 30)).save(tmp_path / "small.png")
    pixels = _square(tmp_path / "small.png", 32)
    assert pixels.shape == (3, 32, 32) and np.abs(pixels.astype(int) - np.array([10, 200, 30])[:, None, None]).max() <= 1
