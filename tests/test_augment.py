"""Augmentation on tensors: seeded, shape-preserving, identity at strength 0, and it really distorts."""

from __future__ import annotations

import pytest
import torch

from core.augment import Augment, AugmentedSampler, affine_grid, augment_from, augment_images, change_thickness, elastic_field
from core.config import ConfigError, EpisodeShape, TrainConfig
from core.episodes import ClassPool, EpisodeSampler

LEVERS = {"rotation": 20.0, "shear": 15.0, "scale": 0.2, "translate": 0.1, "elastic": 0.05, "thickness": 0.8}


def strokes(n: int = 6, size: int = 24, seed: int = 0) -> torch.Tensor:
    """Float (n, 1, size, size) images in [0, 1]: a few bright random bars on a dark ground."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        r, c = torch.randint(4, size - 4, (2,), generator=g).tolist()
        x[i, 0, r, 3 : size - 3] = 1.0
        x[i, 0, 3 : size - 3, c] = 0.8
    return x


@pytest.mark.parametrize("lever", list(LEVERS))
def test_each_lever_is_seeded_shape_preserving_and_distorts(lever: str):
    x = strokes()
    augment = Augment(**{lever: LEVERS[lever]})
    a = augment_images(x, augment, torch.Generator().manual_seed(5))
    b = augment_images(x, augment, torch.Generator().manual_seed(5))
    c = augment_images(x, augment, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.allclose(a, x, atol=1e-3)
    assert a.min() >= -1e-6 and a.max() <= 1 + 1e-6  # still an image in [0, 1]


def test_strength_zero_is_the_identity():
    x = strokes()
    g = torch.Generator().manual_seed(0)
    assert augment_images(x, Augment(), g) is x
    identity = torch.nn.functional.grid_sample(x, affine_grid(x.shape, Augment(), g), align_corners=False)
    torch.testing.assert_close(identity, x)  # a zero-strength affine grid samples every pixel where it is
    assert torch.equal(elastic_field(x.shape, 0.0, g), torch.zeros(6, 24, 24, 2))
    assert torch.equal(change_thickness(x, 0.0, g), x)


def test_thickness_moves_ink_both_ways():
    x = strokes(n=200)
    out = change_thickness(x, 1.0, torch.Generator().manual_seed(0))
    ink_change = (out - x).flatten(1).sum(1)
    assert (ink_change > 1).sum() > 50 and (ink_change < -1).sum() > 50  # some thicker, some thinner


def test_rotation_turns_a_bar():
    x = torch.zeros(1, 1, 33, 33)
    x[0, 0, 16, 4:29] = 1.0  # a horizontal bar through the centre
    out = augment_images(x.repeat(50, 1, 1, 1), Augment(rotation=90), torch.Generator().manual_seed(0))
    rows_touched = (out[:, 0] > 0.3).any(2).sum(1)
    assert rows_touched.max() > 10  # some copies turned far enough to span many rows
    torch.testing.assert_close(out.sum((1, 2, 3)), x.sum().expand(50), rtol=0.15, atol=0)  # ink kept, roughly


def test_augmented_sampler_keeps_episodes_and_follows_the_seed(toy_set):
    pool = ClassPool(toy_set, list(range(10)))
    augment = Augment(rotation=10, elastic=0.03)
    a = AugmentedSampler(EpisodeSampler(pool, 5, 1, 3, seed=0), augment, seed=1).sample()
    b = AugmentedSampler(EpisodeSampler(pool, 5, 1, 3, seed=0), augment, seed=1).sample()
    plain = EpisodeSampler(pool, 5, 1, 3, seed=0).sample()
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)
    assert a.support_x.shape == plain.support_x.shape and torch.equal(a.query_y, plain.query_y)
    assert a.class_ids == plain.class_ids and not torch.equal(a.support_x, plain.support_x)


def test_augmented_batches_are_the_plain_batches_distorted(toy_set):
    """The batched trainer's path (sample_batch): the same episodes as the plain stream, every image augmented, seeded."""
    pool = ClassPool(toy_set, list(range(10)))
    a, b = (AugmentedSampler(EpisodeSampler(pool, 5, 1, 3, seed=0), Augment(shear=10), seed=1).sample_batch(4) for _ in range(2))
    plain = EpisodeSampler(pool, 5, 1, 3, seed=0).sample_batch(4)
    assert a.support_x.shape == plain.support_x.shape == (4, 5, *plain.support_x.shape[2:]) and a.query_x.shape == plain.query_x.shape
    assert torch.equal(a.query_x, b.query_x) and a.class_ids == plain.class_ids and torch.equal(a.query_idx, plain.query_idx)
    assert not torch.equal(a.query_x, plain.query_x) and not torch.equal(a.support_x, plain.support_x)


def test_an_augmented_stream_resumes_where_it_stood(toy_set):
    """--resume with augmentation: the episode stream and the augmentation's draws both continue from the saved state."""
    pool = ClassPool(toy_set, list(range(10)))
    make = lambda: AugmentedSampler(EpisodeSampler(pool, 5, 1, 3, seed=0), Augment(rotation=10), seed=1)  # noqa: E731
    whole = make()
    whole.sample(), whole.sample()
    expected = whole.sample()
    first = make()
    first.sample(), first.sample()
    resumed = make()
    resumed.load_state(first.state())
    got = resumed.sample()
    assert got.class_ids == expected.class_ids and torch.equal(got.support_x, expected.support_x)
    assert torch.equal(got.query_x, expected.query_x)


def test_config_fields_validate_and_build_the_augment():
    train = TrainConfig(aug_rotation=10, aug_elastic=0.04)
    assert augment_from(train) == Augment(rotation=10, elastic=0.04) and augment_from(TrainConfig()).active is False
    with pytest.raises(ConfigError, match="augmentation rotation: use 0 \\(off\\) to 180 \\(got -1") as wrong:
        TrainConfig(aug_rotation=-1)
    assert wrong.value.setting == "aug_rotation"  # the CLI names --aug-rotation, the dashboard its label
    with pytest.raises(ConfigError, match="augmentation thickness: use 0 \\(off\\) to 1 \\(got 2"):
        TrainConfig(aug_thickness=2)
    with pytest.raises(ConfigError, match="a share of episodes: use 0 to 1 \\(got 1.5\\)"):
        TrainConfig(within_alphabet=1.5)
    with pytest.raises(ConfigError, match="use 1 support image per class"):
        TrainConfig(split_drawers=True, train_shape=EpisodeShape(5, 2, 3))
