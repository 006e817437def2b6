"""Drawing tasks for task-level analysis: within one group (an Omniglot alphabet), from chosen images.

Tasks are EpisodeSpecs (dataset image indices), so no images are loaded to draw them and the same
seed gives the same tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.config import EpisodeShape
from core.data.base import ImageSet
from core.episodes import EpisodeError, EpisodeSpec

ALL = "all"  # the one group of a dataset without groups


class TaskDrawer:
    """Seeded tasks of `shape` from `class_ids`, each drawn within one group of the dataset.

    images: optional {class_id: allowed dataset image indices} (e.g. half of each class's images);
    by default every image of a class. Datasets without groups have one group, ALL.
    """

    def __init__(
        self,
        image_set: ImageSet,
        class_ids: Sequence[int],
        shape: EpisodeShape,
        seed: int = 0,
        images: dict[int, Sequence[int]] | None = None,
    ):
        self.image_set, self.shape = image_set, shape
        self.rng = np.random.default_rng(seed)
        self.images = {c: np.asarray(images[c] if images is not None else image_set.indices_of(c).numpy()) for c in class_ids}
        groups = image_set.class_groups
        members: dict[str, list[int]] = {}
        for c in class_ids:
            if len(self.images[c]) >= shape.per_class:  # too small a class cannot fill a task
                members.setdefault(groups[c] if groups else ALL, []).append(c)
        self.members = {g: m for g, m in members.items() if len(m) >= shape.n_way}
        if not self.members:
            raise EpisodeError(
                f"no group has {shape.n_way} classes with {shape.per_class} images each; "
                "use fewer classes per task or fewer images per class, or data with more classes",
                "n_way",
            )
        self.groups = sorted(self.members)

    def draw(self, group: str | None = None, classes: Sequence[int] | None = None) -> EpisodeSpec:
        """A task within `group` (random when None) or on exactly `classes`, with fresh random images."""
        if classes is None:
            group = group if group is not None else self.groups[self.rng.integers(len(self.groups))]
            if group not in self.members:
                raise EpisodeError(f"group '{group}' cannot fill a {self.shape.n_way}-way task; choose one of: {', '.join(self.groups)}")
            classes = self.rng.choice(self.members[group], self.shape.n_way, replace=False).tolist()
        k, rows = self.shape.k_shot, []
        for c in classes:
            rows.append(self.rng.choice(self.images[int(c)], self.shape.per_class, replace=False).tolist())
        return EpisodeSpec(tuple(int(c) for c in classes), tuple(tuple(r[:k]) for r in rows), tuple(tuple(r[k:]) for r in rows))

    def draw_many(self, n: int) -> list[EpisodeSpec]:
        """n tasks, the groups taken in turn so every group is represented alike."""
        return [self.draw(self.groups[i % len(self.groups)]) for i in range(n)]

    def group_of(self, spec: EpisodeSpec) -> str:
        """The group a task was drawn within (its first class's group)."""
        groups = self.image_set.class_groups
        return groups[spec.class_ids[0]] if groups else ALL


def split_images(image_set: ImageSet, class_ids: Sequence[int], first: int) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Each class's images cut in storage order: ({class: first `first` images}, {class: the rest})."""
    head, tail = {}, {}
    for c in class_ids:
        idx = image_set.indices_of(c).tolist()
        head[c], tail[c] = idx[:first], idx[first:]
    return head, tail


def split_classes_within_groups(image_set: ImageSet, class_ids: Sequence[int], seed: int = 0) -> tuple[list[int], list[int]]:
    """Each group's classes shuffled and halved: (one half of every group, the other half)."""
    groups = image_set.class_groups
    by_group: dict[str, list[int]] = {}
    for c in class_ids:
        by_group.setdefault(groups[c] if groups else ALL, []).append(c)
    rng = np.random.default_rng(seed)
    first, second = [], []
    for g in sorted(by_group):
        members = rng.permutation(by_group[g]).tolist()
        first += members[: len(members) // 2]
        second += members[len(members) // 2 :]
    return sorted(first), sorted(second)
