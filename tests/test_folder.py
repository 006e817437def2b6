"""The user's own image folders: layout, colour, crop, unreadable files, caching, helpful errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

import core.data.folder as folder
from core.data.base import DataError
from core.data.folder import load_folder

RED, GREY = (220, 30, 30), 77


def _save(path: Path, mode: str, size: tuple[int, int], colour: int | tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """birds: 2 grey PNGs + a corrupt JPEG; cats: 3 red JPEGs (odd sizes); dogs: a grey and an RGB PNG, upper-case extensions."""
    root = tmp_path / "pets"
    for i in range(2):
        _save(root / "birds" / f"b{i}.png", "L", (30, 30), GREY)
    (root / "birds" / "corrupt.jpg").write_bytes(b"\xff\xd8 these are not image bytes")
    for i, size in enumerate([(40, 30), (30, 40), (64, 64)]):
        _save(root / "cats" / f"c{i}.jpg", "RGB", size, RED)
    _save(root / "dogs" / "d0.PNG", "L", (20, 20), GREY)
    _save(root / "dogs" / "d1.Png", "RGB", (20, 20), RED)
    (root / "dogs" / "notes.txt").write_text("not an image, not counted")
    (root / "dogs" / "._d0.PNG").write_bytes(b"macOS resource fork, not an image")
    return root


def test_mixed_folder_loads_as_rgb(mixed: Path, tmp_path: Path):
    image_set = load_folder(mixed, image_size=16, cache_root=tmp_path / "cache")
    assert image_set.class_names == ("birds", "cats", "dogs") and image_set.class_groups is None
    assert image_set.images.shape == (7, 3, 16, 16) and image_set.images.dtype == torch.uint8
    assert image_set.class_counts().tolist() == [2, 3, 2]
    cats = image_set.images[image_set.indices_of(1)].float().mean(dim=(0, 2, 3))
    assert torch.allclose(cats, torch.tensor(RED, dtype=torch.float), atol=6)  # JPEG is lossy
    birds = image_set.images[image_set.indices_of(0)]
    assert (birds == GREY).all()  # grey images become three equal channels


def test_corrupt_file_is_skipped_and_named(mixed: Path, tmp_path: Path):
    image_set = load_folder(mixed, image_size=16, cache_root=tmp_path / "cache")
    assert len(image_set.warnings) == 1
    assert image_set.warnings[0].startswith(f"skipped unreadable image: {mixed / 'birds' / 'corrupt.jpg'} (")


def test_all_grey_folder_has_one_channel(tmp_path: Path):
    for name in ("a", "b"):
        _save(tmp_path / "data" / name / "x.png", "L", (10, 12), GREY)
        _save(tmp_path / "data" / name / "y.bmp", "1", (12, 10), 1)
    image_set = load_folder(tmp_path / "data", image_size=8, cache_root=tmp_path / "cache")
    assert image_set.images.shape == (4, 1, 8, 8)
    assert image_set.images[image_set.labels == 0].unique().tolist() == [GREY, 255]


def test_wide_image_is_centre_cropped(tmp_path: Path):
    wide = Image.new("RGB", (90, 30), (255, 0, 0))
    wide.paste((0, 0, 255), (30, 0, 60, 30))  # the blue middle third is the centred square
    (tmp_path / "data" / "a").mkdir(parents=True)
    wide.save(tmp_path / "data" / "a" / "wide.png")
    _save(tmp_path / "data" / "b" / "x.png", "RGB", (5, 5), RED)
    image = load_folder(tmp_path / "data", image_size=12, cache_root=tmp_path / "cache").images[0]
    assert (image[2] >= 250).all() and (image[0] <= 5).all()  # nothing of the red sides


def test_two_level_folder_gives_groups(tmp_path: Path):
    for group, cls in [("latin", "a"), ("latin", "b"), ("greek", "alpha")]:
        _save(tmp_path / "data" / group / cls / "x.png", "L", (8, 8), GREY)
    image_set = load_folder(tmp_path / "data", image_size=8, cache_root=tmp_path / "cache")
    assert image_set.class_names == ("greek/alpha", "latin/a", "latin/b")
    assert image_set.class_groups == ("greek", "latin", "latin")


def test_second_load_comes_from_the_cache_until_files_change(mixed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first = load_folder(mixed, image_size=16, cache_root=tmp_path / "cache")

    def refuse(*args: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder, "_decode", refuse)
    second = load_folder(mixed, image_size=16, cache_root=tmp_path / "cache")
    assert torch.equal(first.images, second.images) and second.warnings == first.warnings
    _save(mixed / "cats" / "c9.jpg", "RGB", (9, 9), RED)
    with pytest.raises(AssertionError, match="decoded again"):
        load_folder(mixed, image_size=16, cache_root=tmp_path / "cache")


def test_class_with_only_unreadable_images_is_left_out(mixed: Path, tmp_path: Path):
    (mixed / "fish").mkdir()
    (mixed / "fish" / "broken.png").write_bytes(b"garbage")
    image_set = load_folder(mixed, image_size=16, cache_root=tmp_path / "cache")
    assert image_set.class_names == ("birds", "cats", "dogs")
    assert any("broken.png" in w for w in image_set.warnings)
    assert any("left out class 'fish'" in w for w in image_set.warnings)


def test_missing_path(tmp_path: Path):
    with pytest.raises(DataError, match="nowhere does not exist.*one sub-folder of images per class"):
        load_folder(tmp_path / "nowhere", cache_root=tmp_path)


def test_file_instead_of_directory(tmp_path: Path):
    path = _save(tmp_path / "one.png", "L", (8, 8), 0)
    with pytest.raises(DataError, match="one.png is a file, not a directory"):
        load_folder(path, cache_root=tmp_path)


def test_loose_images_without_class_folders(tmp_path: Path):
    for i in range(3):
        _save(tmp_path / "flat" / f"{i}.png", "L", (8, 8), 0)
    with pytest.raises(DataError, match="flat has no class sub-folders .found 3 images directly in it: move them"):
        load_folder(tmp_path / "flat", cache_root=tmp_path)


def test_class_folder_without_images(mixed: Path, tmp_path: Path):
    (mixed / "empty").mkdir()
    (mixed / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="class folder.s. with no .* images: empty; add images"):
        load_folder(mixed, cache_root=tmp_path)


def test_single_class(tmp_path: Path):
    _save(tmp_path / "data" / "only" / "x.png", "L", (8, 8), 0)
    with pytest.raises(DataError, match=r"only 1 class folder \(only\).*at least 2 classes"):
        load_folder(tmp_path / "data", cache_root=tmp_path)


def test_every_image_unreadable(tmp_path: Path):
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="none of the 2 images under .*data could be read"):
        load_folder(tmp_path / "data", cache_root=tmp_path)


def test_one_readable_class_is_not_enough(tmp_path: Path):
    _save(tmp_path / "data" / "a" / "x.png", "L", (8, 8), 0)
    (tmp_path / "data" / "b").mkdir()
    (tmp_path / "data" / "b" / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="only class 'a' .* has readable images"):
        load_folder(tmp_path / "data", cache_root=tmp_path)
