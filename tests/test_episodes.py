"""Episode sampling: counts, label remapping, seeds, hand-built episodes and named errors."""

from __future__ import annotations

import pytest
import torch

from core.config import EpisodeShape
from core.episodes import ClassPool, EpisodeError, EpisodeSampler, EpisodeSpec, build_episode, draw_spec


def test_episode_counts_labels_and_classes(toy_set):
    pool = ClassPool(toy_set, list(range(10)))
    ep = EpisodeSampler(pool, n_way=5, k_shot=2, q_query=3, seed=1).sample()
    assert ep.support_x.shape == (10, 1, 16, 16) and ep.query_x.shape == (15, 1, 16, 16)
    assert ep.support_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert ep.query_y.tolist() == [i for i in range(5) for _ in range(3)]
    assert len(set(ep.class_ids)) == 5 and set(ep.class_ids) <= set(range(10))
    # every image really belongs to the class its label names, and none is reused
    for idx, y in [(ep.support_idx, ep.support_y), (ep.query_idx, ep.query_y)]:
        assert [toy_set.labels[i].item() for i in idx] == [ep.class_ids[j] for j in y.tolist()]
    used = ep.support_idx.tolist() + ep.query_idx.tolist()
    assert len(set(used)) == len(used)
    assert torch.equal(ep.support_x, toy_set.images[ep.support_idx].float() / 255)


def test_same_seed_same_episodes_and_different_seed_differs(toy_set):
    pool = ClassPool(toy_set, list(range(20)))
    a = [EpisodeSampler(pool, 5, 1, 2, seed=7).sample() for _ in range(1)]
    s1, s2, s3 = (EpisodeSampler(pool, 5, 1, 2, seed=s) for s in (7, 7, 8))
    first = [s1.sample() for _ in range(5)]
    second = [s2.sample() for _ in range(5)]
    other = [s3.sample() for _ in range(5)]
    assert all(torch.equal(x.query_idx, y.query_idx) and x.class_ids == y.class_ids for x, y in zip(first, second, strict=True))
    assert a[0].class_ids == first[0].class_ids
    assert any(x.class_ids != y.class_ids for x, y in zip(first, other, strict=True))


def test_sampler_covers_classes_and_images_uniformly(toy_set):
    pool = ClassPool(toy_set, list(range(6)))
    sampler = EpisodeSampler(pool, 3, 1, 1, seed=0)
    class_hits = torch.zeros(toy_set.n_classes)
    image_hits = torch.zeros(len(toy_set.labels))
    for _ in range(600):
        ep = sampler.sample()
        class_hits[list(ep.class_ids)] += 1
        image_hits[ep.support_idx] += 1
    assert class_hits[:6].min() > 250 and class_hits[6:].sum() == 0  # each class ~300 times
    assert (image_hits[:72] > 0).all()  # every image of the pool gets used


def test_rotations_add_classes(toy_set):
    pool = ClassPool(toy_set, [0, 1], rotations=True)
    assert pool.n_classes == 8 and pool.rotations == (0, 0, 1, 1, 2, 2, 3, 3)
    ep = EpisodeSampler(pool, 8, 1, 1, seed=0).sample()
    j = ep.rotations.index(1)
    original = toy_set.images[ep.support_idx[j]].float() / 255
    assert torch.equal(ep.support_x[j], torch.rot90(original, 1, dims=(1, 2)))


def test_unequal_class_sizes_never_pick_missing_images(toy_set):
    keep = torch.ones(len(toy_set.labels), dtype=torch.bool)
    keep[(toy_set.labels == 0).nonzero().flatten()[4:]] = False  # class 0 keeps 4 images
    from core.data.base import ImageSet

    small = ImageSet("uneven", toy_set.images[keep], toy_set.labels[keep], toy_set.class_names)
    sampler = EpisodeSampler(ClassPool(small, [0, 1]), 2, 2, 2, seed=3)
    for _ in range(50):
        ep = sampler.sample()
        assert [small.labels[i].item() for i in ep.support_idx] == [ep.class_ids[j] for j in ep.support_y.tolist()]


def test_too_many_ways_names_the_numbers(toy_set):
    pool = ClassPool(toy_set, list(range(4)))
    with pytest.raises(EpisodeError, match=r"5 classes per episode, but this split has only 4; use at most 4 classes per episode"):
        EpisodeSampler(pool, 5, 1, 1)


def test_too_many_shots_names_the_numbers(toy_set):
    pool = ClassPool(toy_set, list(range(10)))
    with pytest.raises(
        EpisodeError,
        match=r"5 support \+ 8 query images per class make 13, but the smallest class has 12 images; .* together they are at most 12",
    ):
        EpisodeSampler(pool, 5, 5, 8)


def test_empty_split_is_an_error(toy_set):
    with pytest.raises(EpisodeError, match="no classes"):
        ClassPool(toy_set, [])


def test_build_episode_from_chosen_images(toy_set):
    ids0, ids3 = toy_set.indices_of(0).tolist(), toy_set.indices_of(3).tolist()
    ep = build_episode(toy_set, {3: ids3[:2], 0: ids0[:2]}, {3: ids3[2:4], 0: ids0[2:4]})
    assert ep.class_ids == (3, 0)
    assert ep.support_y.tolist() == [0, 0, 1, 1]
    assert ep.support_idx.tolist() == ids3[:2] + ids0[:2]


@pytest.mark.parametrize(
    "support,query,message",
    [
        ({0: [0]}, {0: [1]}, "at least 2 classes"),
        ({0: [0], 1: [12, 13]}, {0: [1], 1: [14]}, "same number"),
        ({0: [0], 1: [0]}, {0: [1], 1: [14]}, r"not of class 1"),
        ({0: [0], 1: [12]}, {0: [0], 1: [14]}, "used twice"),
        ({0: [0], 1: [12]}, {1: [13], 0: [1]}, "same classes in the same order"),
    ],
)
def test_build_episode_rejects_bad_choices(toy_set, support, query, message):
    with pytest.raises(EpisodeError, match=message):
        build_episode(toy_set, support, query)


def test_spec_round_trip_swap_and_fixed_classes(toy_set):
    spec = draw_spec(toy_set, range(10), EpisodeShape(3, 2, 2), seed=4)
    assert EpisodeSpec.from_dict(spec.to_dict()) == spec
    assert EpisodeSpec.from_episode(spec.build(toy_set)) == spec
    spare = next(i for i in toy_set.indices_of(spec.class_ids[1]).tolist() if i not in spec.support[1] + spec.query[1])
    swapped = spec.with_image("support", 1, 0, spare)
    assert swapped.support[1] == (spare, spec.support[1][1]) and swapped.query == spec.query
    fixed = draw_spec(toy_set, range(10), EpisodeShape(5, 1, 1), seed=0, fixed_classes=[9, 2, 4])
    assert fixed.class_ids == (9, 2, 4)
    with pytest.raises(EpisodeError):
        EpisodeSpec.from_dict({"class_ids": [1]})


@pytest.mark.parametrize("ahead", [1, 3, 32])
def test_read_ahead_gives_the_episodes_of_plain_draws(toy_set, ahead: int):
    """The sampler copies rows `ahead` episodes at a time (for a GPU); the episodes are those of draw() in turn."""
    pool = ClassPool(toy_set, list(range(12)))
    sampler, reference = EpisodeSampler(pool, 4, 2, 3, seed=5, ahead=ahead), EpisodeSampler(pool, 4, 2, 3, seed=5)
    for _ in range(7):  # crosses read-ahead boundaries
        got, (classes, positions) = sampler.sample(), reference.draw()
        want = pool.episode(classes, positions, 2)
        assert got.class_ids == want.class_ids and torch.equal(got.query_idx, want.query_idx)
        assert torch.equal(got.support_x, want.support_x) and torch.equal(got.query_x, want.query_x)
        assert torch.equal(got.support_x, toy_set.images[got.support_idx].float() / 255)
        assert got.support_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and got.query_y.tolist() == [i for i in range(4) for _ in range(3)]
