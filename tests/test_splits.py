"""Class splits: disjoint, seeded, by group where there are groups, Omniglot's fixed split."""

from __future__ import annotations

import pytest

from core.data.base import DataError
from core.data.splits import OMNIGLOT_MINIMAL_SPLIT, split_classes
from tests.conftest import make_toy_set


def test_split_is_disjoint_complete_and_seeded():
    image_set = make_toy_set(n_classes=50)
    a, b, c = split_classes(image_set, 0), split_classes(image_set, 0), split_classes(image_set, 1)
    everything = set(a.train) | set(a.val) | set(a.test)
    assert everything == set(range(50)) and len(a.train) + len(a.val) + len(a.test) == 50
    assert (len(a.train), len(a.val), len(a.test)) == (35, 5, 10)
    assert a == b and a != c


def test_grouped_data_splits_by_group():
    image_set = make_toy_set(n_classes=60, groups=10)
    split = split_classes(image_set, 0)
    group_of = image_set.class_groups
    parts = [{group_of[c] for c in split.classes(s)} for s in ("train", "val", "test")]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])


def test_unknown_split_name():
    with pytest.raises(DataError, match="unknown split 'dev'"):
        split_classes(make_toy_set(), 0).classes("dev")


def test_omniglot_minimal_default_split(omniglot_dir):
    from core.data.omniglot import load_omniglot

    image_set = load_omniglot(omniglot_dir)
    split = split_classes(image_set)
    assert (len(split.train), len(split.val), len(split.test)) == (136, 17, 89)
    for name, alphabets in OMNIGLOT_MINIMAL_SPLIT.items():
        assert {image_set.class_groups[c] for c in split.classes(name)} == set(alphabets)
