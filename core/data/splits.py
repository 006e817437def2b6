"""Class-disjoint meta-train / meta-val / meta-test splits, by group where the data has groups."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.base import SPLIT_NAMES, DataError, ImageSet

# Lake's minimal background sets: a fixed split so figures compare across runs.
OMNIGLOT_MINIMAL_SPLIT = {
    "train": ("Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"),
    "val": ("Tagalog",),
    "test": ("Japanese_(katakana)", "Sanskrit"),
}


@dataclass(frozen=True)
class ClassSplit:
    """Class ids of each split; disjoint by construction (checked)."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]

    def __post_init__(self) -> None:
        seen = set(self.train)
        for part in (self.val, self.test):
            if seen & set(part):
                raise DataError("splits overlap: a class is in more than one of train / val / test")
            seen |= set(part)

    def classes(self, split: str) -> tuple[int, ...]:
        if split not in SPLIT_NAMES:
            raise DataError(f"unknown split '{split}'; use one of: {', '.join(SPLIT_NAMES)}")
        return getattr(self, split)


def split_classes(image_set: ImageSet, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> ClassSplit:
    """Split classes into train / val / test.

    A dataset that brings its standard split (ImageSet.class_splits: the named benchmarks) gets
    exactly that split, whatever the seed, so figures compare with published ones. Grouped data
    (Omniglot alphabets) is split by group so test groups are never seen in training; Lake's
    minimal background sets get their fixed split. Otherwise classes are shuffled with `seed`
    and cut by `fractions`.
    """
    if image_set.class_splits is not None:
        return ClassSplit(*(tuple(c for c, s in enumerate(image_set.class_splits) if s == split) for split in SPLIT_NAMES))
    if image_set.class_groups is None:
        return _cut(list(range(image_set.n_classes)), seed, fractions, lambda members: members)
    groups = image_set.class_groups
    names = sorted(set(groups))
    fixed = OMNIGLOT_MINIMAL_SPLIT
    if set(names) == {g for part in fixed.values() for g in part}:
        return ClassSplit(*(tuple(c for c, g in enumerate(groups) if g in fixed[s]) for s in SPLIT_NAMES))
    if len(names) < 3:  # too few groups to split by group: fall back to classes
        return _cut(list(range(image_set.n_classes)), seed, fractions, lambda members: members)
    return _cut(names, seed, fractions, lambda chosen: [c for c, g in enumerate(groups) if g in set(chosen)])


def _cut(items: list, seed: int, fractions: tuple[float, float, float], expand) -> ClassSplit:
    if len(items) < 3:
        raise DataError(f"only {len(items)} classes: a train / val / test split needs at least 3")
    order = [items[i] for i in np.random.default_rng(seed).permutation(len(items))]
    n_val = max(1, round(fractions[1] * len(items)))
    n_test = max(1, round(fractions[2] * len(items)))
    n_train = max(1, len(items) - n_val - n_test)
    parts = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    return ClassSplit(*(tuple(sorted(expand(p))) for p in parts))
