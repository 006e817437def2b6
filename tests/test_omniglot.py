"""Omniglot from Lake's real minimal zips: counts, dedup, polarity, caching, layouts, errors."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
import torch

import core.data.omniglot as omniglot
from core.data.base import DataError, ImageSet
from core.data.omniglot import load_omniglot

MINIMAL_ALPHABETS = {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin", "Japanese_(katakana)", "Sanskrit", "Tagalog"}
EXTRACTED = ("Greek", "Tagalog")  # one shared by both zips, one only in the second


@pytest.fixture(scope="module")
def minimal(omniglot_dir: Path) -> ImageSet:
    return load_omniglot(omniglot_dir)


def test_minimal_sets_give_242_characters_of_20_images(minimal: ImageSet):
    assert minimal.n_classes == 242
    assert set(minimal.class_groups) == MINIMAL_ALPHABETS
    assert minimal.class_counts().tolist() == [20] * 242
    assert minimal.images.shape == (242 * 20, 1, 28, 28) and minimal.images.dtype == torch.uint8


def test_alphabets_in_both_zips_count_once(minimal: ImageSet):
    for alphabet, n_characters in (("Greek", 24), ("Latin", 26)):
        names = [n for n in minimal.class_names if n.startswith(f"{alphabet}/")]
        assert len(names) == len(set(names)) == n_characters


def test_classes_sorted_and_named_by_alphabet(minimal: ImageSet):
    pairs = [name.split("/") for name in minimal.class_names]
    assert pairs == sorted(pairs)
    assert all(group == alphabet for group, (alphabet, _) in zip(minimal.class_groups, pairs, strict=True))
    assert minimal.class_names[0] == "Balinese/character01"
    assert (minimal.labels.diff() >= 0).all()


def test_strokes_are_bright_on_dark(minimal: ImageSet):
    images = minimal.images.float()
    assert images.mean() < 50  # mostly background
    assert images.amax(dim=(1, 2, 3)).min() > 128  # every image has strokes, thin ones greyed by the downscale
    corners = images[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.mean() < 5


def test_images_differ_within_a_character(minimal: ImageSet):
    first = minimal.images[minimal.indices_of(0)]
    assert not torch.equal(first[0], first[1])


def test_image_size_and_second_load_from_the_cache(omniglot_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first = load_omniglot(omniglot_dir, image_size=32, cache_root=tmp_path)
    assert first.images.shape == (4840, 1, 32, 32)
    assert list((tmp_path / "datasets").glob("omniglot-*/meta.json"))

    def refuse(*args: object) -> None:
        raise AssertionError("decoded again despite a cached copy")

    monkeypatch.setattr(omniglot, "_decode", refuse)
    second = load_omniglot(omniglot_dir, image_size=32, cache_root=tmp_path)
    assert torch.equal(first.images, second.images) and first.class_names == second.class_names
    assert second.class_groups == first.class_groups
    with pytest.raises(AssertionError, match="decoded again"):  # a new size is a new key
        load_omniglot(omniglot_dir, image_size=28, cache_root=tmp_path)


def _extract(zip_path: Path, alphabets: tuple[str, ...], into: Path) -> None:
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            if name.split("/")[1] in alphabets:
                archive.extract(name, into)


@pytest.mark.parametrize("layout", ["images_background", "omniglot-py/images_background"])
def test_extracted_folders_match_the_zip(omniglot_dir: Path, minimal: ImageSet, tmp_path: Path, layout: str):
    _extract(omniglot_dir / "images_background_small2.zip", EXTRACTED, tmp_path / "unzipped")
    target = tmp_path / "data" / layout
    target.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "unzipped" / "images_background_small2").rename(target)
    extracted = load_omniglot(tmp_path / "data", cache_root=tmp_path / "cache")
    wanted = torch.tensor([g in EXTRACTED for g in minimal.class_groups])[minimal.labels]
    assert extracted.class_names == tuple(n for n in minimal.class_names if n.split("/")[0] in EXTRACTED)
    assert torch.equal(extracted.images, minimal.images[wanted])


def test_changed_folder_is_decoded_again(omniglot_dir: Path, tmp_path: Path):
    _extract(omniglot_dir / "images_background_small2.zip", ("Tagalog",), tmp_path / "data")
    before = load_omniglot(tmp_path / "data", cache_root=tmp_path / "cache")
    next((tmp_path / "data").rglob("character17")).joinpath("0000_99.png").write_bytes(
        next((tmp_path / "data").rglob("*.png")).read_bytes()
    )
    after = load_omniglot(tmp_path / "data", cache_root=tmp_path / "cache")
    assert len(after.images) == len(before.images) + 1


def test_env_var_is_used_when_no_dir_given(omniglot_dir: Path, minimal: ImageSet, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(omniglot.ENV_VAR, str(omniglot_dir))
    assert load_omniglot().class_names == minimal.class_names


def test_missing_dir_names_the_path(tmp_path: Path):
    missing = tmp_path / "no-such-omniglot"
    with pytest.raises(DataError, match="no-such-omniglot.*does not exist; point the data folder at"):
        load_omniglot(missing, cache_root=tmp_path)


def test_folder_without_omniglot_says_what_it_expected(tmp_path: Path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.png").write_bytes(b"not a character")
    with pytest.raises(DataError, match="no Omniglot images found in .*stuff.*images_background.zip"):
        load_omniglot(tmp_path / "stuff", cache_root=tmp_path)


def test_nothing_found_without_download_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(omniglot.ENV_VAR, raising=False)
    with pytest.raises(
        DataError, match=rf"looked in {re.escape(str(tmp_path / 'omniglot'))}.*download Omniglot on a machine with network access"
    ):
        load_omniglot(cache_root=tmp_path)


def test_damaged_zip_is_reported(tmp_path: Path):
    (tmp_path / "images_background.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="images_background.zip.*download it again"):
        load_omniglot(tmp_path, cache_root=tmp_path)
