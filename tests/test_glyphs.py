"""glyphs: seeded and deterministic, shaped as promised, jittered within a class, cached, validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import core.data.glyphs as glyphs
from core.data.base import DataError, ImageSet
from core.data.glyphs import NO_JITTER, Jitter, generate_glyphs, load_glyphs

SMALL = dict(image_size=16, n_classes=6, samples_per_class=4)


@pytest.fixture(scope="module")
def small() -> ImageSet:
    return generate_glyphs(**SMALL, seed=3)


def test_same_seed_gives_bit_identical_images(small: ImageSet):
    again = generate_glyphs(**SMALL, seed=3)
    assert torch.equal(small.images, again.images)
    assert torch.equal(small.labels, again.labels)


def test_different_seeds_give_different_images(small: ImageSet):
    other = generate_glyphs(**SMALL, seed=4)
    assert not torch.equal(small.images, other.images)


def test_a_smaller_set_is_a_prefix_of_a_larger_one(small: ImageSet):
    fewer = generate_glyphs(image_size=16, n_classes=2, samples_per_class=4, seed=3)
    assert torch.equal(fewer.images, small.images[:8])


def test_shapes_dtypes_and_labels():
    images = generate_glyphs(image_size=20, n_classes=5, samples_per_class=3, seed=0)
    assert images.images.shape == (15, 1, 20, 20) and images.images.dtype == torch.uint8
    assert images.labels.dtype == torch.int64
    assert images.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert images.class_names == ("glyph-0001", "glyph-0002", "glyph-0003", "glyph-0004", "glyph-0005")


def test_classes_are_grouped_in_families_of_twenty():
    images = generate_glyphs(image_size=8, n_classes=45, samples_per_class=1, seed=0)
    groups = images.class_groups
    assert groups[:20] == ("family-01",) * 20 and groups[20:40] == ("family-02",) * 20 and groups[40:] == ("family-03",) * 5


def test_bright_strokes_on_a_dark_background(small: ImageSet):
    images = small.images.float()
    assert images.max() == 255
    assert images.amax(dim=(1, 2, 3)).min() > 180  # even thin strokes at 16 px are bright, not greyed out
    assert images.mean() < 80  # mostly background
    assert images[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]].max() == 0  # strokes are kept off the corners


def test_samples_of_one_class_differ(small: ImageSet):
    first = small.images[small.indices_of(0)].flatten(1).float()
    assert torch.cdist(first, first).fill_diagonal_(float("inf")).min() > 0


def test_without_jitter_every_sample_is_its_template():
    plain = generate_glyphs(**SMALL, seed=3, jitter=NO_JITTER)
    per_class = plain.images.view(6, 4, -1)
    assert torch.equal(per_class, per_class[:, :1].expand_as(per_class))
    assert not torch.equal(per_class[0, 0], per_class[1, 0])


def test_jitter_moves_pixels_more_than_it_keeps_them():
    """Raw pixels must be a poor match across samples, or a learned metric has nothing to beat."""
    images = generate_glyphs(image_size=28, n_classes=1, samples_per_class=10, seed=0).images.flatten(1).float() / 255
    ink = images > 0.5
    overlap = (ink[:, None] & ink[None]).sum(-1) / (ink[:, None] | ink[None]).sum(-1)  # intersection over union
    assert overlap.fill_diagonal_(0).sum() / (10 * 9) < 0.4  # ~0.23 as tuned; 1.0 without jitter


def test_cache_round_trip_returns_identical_tensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first = load_glyphs(**SMALL, seed=1, cache_root=tmp_path)
    assert len(list((tmp_path / "datasets").glob("glyphs-*/meta.json"))) == 1

    def no_generation(**_: object) -> ImageSet:
        raise AssertionError("the second load should come from the cache")

    monkeypatch.setattr(glyphs, "generate_glyphs", no_generation)
    second = load_glyphs(**SMALL, seed=1, cache_root=tmp_path)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert (first.class_names, first.class_groups, first.source) == (second.class_names, second.class_groups, second.source)


def test_cache_is_keyed_by_every_parameter(tmp_path: Path):
    load_glyphs(**SMALL, seed=1, cache_root=tmp_path)
    for change in (dict(seed=2), dict(image_size=12), dict(n_classes=5), dict(samples_per_class=3)):
        load_glyphs(**{**SMALL, "seed": 1, **change}, cache_root=tmp_path)
    assert len(list((tmp_path / "datasets").glob("glyphs-*/meta.json"))) == 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(n_classes=0), "at least 1 class"),
        (dict(samples_per_class=0), "at least 1 sample"),
        (dict(image_size=4), "use 8 to 256"),
        (dict(image_size=1000), "use 8 to 256"),
        (dict(seed=-1), "non-negative"),
    ],
)
def test_bad_arguments_say_what_to_change(arguments: dict, message: str, tmp_path: Path):
    for build in (generate_glyphs, lambda **kw: load_glyphs(**kw, cache_root=tmp_path)):
        with pytest.raises(DataError, match=message):
            build(**{**SMALL, **arguments})


def test_bad_jitter_is_refused():
    with pytest.raises(DataError, match="pen width"):
        Jitter(width=(2.0, 1.0))
    with pytest.raises(DataError, match=">= 0"):
        Jitter(rotation=-5.0)
