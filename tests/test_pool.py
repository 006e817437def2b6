"""ClassPool reads lazily: a large pool copies nothing up front, turns the drawn rows, and gives the same episodes."""

from __future__ import annotations

import pytest
import torch

import core.episodes as episodes
from core.data.base import Normalisation
from core.episodes import ClassPool, EpisodeSampler
from tests.conftest import make_toy_set


@pytest.mark.parametrize("rotations", [False, True])
def test_lazy_pool_gives_the_episodes_of_a_materialised_one(rotations: bool, monkeypatch: pytest.MonkeyPatch):
    image_set = make_toy_set(n_classes=12, per_class=6, size=10)
    classes = [1, 3, 4, 7, 8, 11]
    small = ClassPool(image_set, classes, rotations)
    monkeypatch.setattr(episodes, "SMALL_POOL_BYTES", 0)  # as if it were large: read from the dataset per episode
    lazy = ClassPool(image_set, classes, rotations)
    assert small.images.direct and not lazy.images.direct
    assert lazy.images.source is image_set.images  # nothing copied: the pool indexes the dataset's own tensor
    assert lazy.images.shape == small.images.shape == (len(classes) * 6 * (4 if rotations else 1), 1, 10, 10)
    small_sampler, lazy_sampler = EpisodeSampler(small, 5, 2, 3, seed=4), EpisodeSampler(lazy, 5, 2, 3, seed=4)
    turned = 0
    for _ in range(10):
        a, b = small_sampler.sample(), lazy_sampler.sample()
        assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x) and a.rotations == b.rotations
        turned += sum(t > 0 for t in a.rotations)
    assert (turned > 0) == rotations
    rows = torch.tensor([0, len(lazy.images) - 1, 7])
    assert torch.equal(lazy.images[rows], small.images[rows]) and torch.equal(lazy.images[5], small.images[5])
    assert torch.equal(lazy.images[2:9], small.images[2:9])


def test_rotated_class_is_its_images_turned():
    image_set = make_toy_set(n_classes=4, per_class=3, size=8)
    pool = ClassPool(image_set, [2, 0], rotations=True)
    for local in range(pool.n_classes):
        start, count = int(pool.starts[local]), int(pool.counts[local])
        original = image_set.images[image_set.indices_of(pool.class_ids[local])]
        turned = torch.rot90(original, pool.rotations[local], dims=(2, 3))
        assert torch.equal(pool.images[start : start + count], turned)


def test_floats_use_the_datasets_normalisation():
    toy = make_toy_set(n_classes=4, per_class=3, size=8)
    norm = Normalisation((0.25,), (0.5,))
    image_set = type(toy)(**{**toy.__dict__, "normalisation": norm})
    pool = ClassPool(image_set, [0, 1])
    expected = (image_set.images[pool.image_ids[:4]].float() / 255 - 0.25) / 0.5
    torch.testing.assert_close(pool.floats(slice(0, 4)), expected)
