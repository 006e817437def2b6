"""Where a study's stored tasks and new tasks come from, and which stored tasks are related to a new one.

New tasks are always drawn on the meta-test classes (never seen in training). The library of stored
tasks (`LIBRARIES`):
- "mixed": tasks drawn within every group of the dataset (all eight Omniglot alphabets, every glyph
  family), so only some share a new task's group; the new tasks' own classes are among them, on other
  images: each class's first stored_k_shot + 1 images (storage order: Omniglot drawers 01-06) feed the
  library, the rest the new tasks;
- "mixed-classes": the same, but the new tasks' classes are never stored: each test group's classes are
  halved, the library holds one half (and every other group), the new tasks the other half; only the
  group can relate a stored task to a new one;
- "images": only the new tasks' classes (the meta-test classes), on other images: every stored task is
  from a test group and many hold a new task's classes (the study's first library);
- "classes": only other classes of the test groups.
Related (`RELATIONS`): a stored task shares a group with the new task, or shares one of its classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from core.config import EpisodeShape
from core.data.base import ImageSet
from core.data.splits import ClassSplit
from core.episodes import EpisodeSpec
from core.tasks.draw import ALL, TaskDrawer, split_classes_within_groups, split_images

LIBRARIES = ("mixed", "mixed-classes", "images", "classes")
RELATIONS = ("group", "class")


def library_classes(image_set: ImageSet, split: ClassSplit, library: str, seed: int = 0) -> tuple[list[int], list[int]]:
    """(classes of the stored tasks, classes of the new tasks) for `library` (see the module docstring)."""
    test = list(split.test)
    if library == "images":
        return test, test
    if library == "classes":
        return split_classes_within_groups(image_set, test, seed)
    others = sorted(set(range(image_set.n_classes)) - set(test))
    if library == "mixed":
        return sorted(others + test), test
    if library == "mixed-classes":
        stored, new = split_classes_within_groups(image_set, test, seed)
        return sorted(others + stored), new
    raise ValueError(f"unknown library '{library}'; use one of: {', '.join(LIBRARIES)}")


def library_drawers(
    image_set: ImageSet, split: ClassSplit, library: str, new_shape: EpisodeShape, stored_k_shot: int, seed: int = 0
) -> tuple[TaskDrawer, TaskDrawer]:
    """(drawer of stored tasks, drawer of new tasks). Each class's first stored_k_shot + 1 images go to the
    library and the rest to the new tasks, whatever the library, so the libraries differ only in their classes."""
    stored, new = library_classes(image_set, split, library, seed)
    head, tail = split_images(image_set, sorted(set(stored) | set(new)), stored_k_shot + 1)
    stored_shape = EpisodeShape(new_shape.n_way, stored_k_shot, 1)
    return TaskDrawer(image_set, stored, stored_shape, seed, head), TaskDrawer(image_set, new, new_shape, seed + 1, tail)


def task_groups(image_set: ImageSet, spec: EpisodeSpec) -> set[str]:
    """The groups of a task's classes ({ALL} for data without groups)."""
    groups = image_set.class_groups
    return {groups[c] for c in spec.class_ids} if groups else {ALL}


def related(image_set: ImageSet, new: Sequence[EpisodeSpec], stored: Sequence[EpisodeSpec], relation: str) -> torch.Tensor:
    """(m, t) bool: new task i and stored task j share a group (relation 'group') or a class ('class')."""
    if relation not in RELATIONS:
        raise ValueError(f"unknown relation '{relation}'; use one of: {', '.join(RELATIONS)}")
    key = (lambda s: task_groups(image_set, s)) if relation == "group" else (lambda s: set(s.class_ids))
    stored_keys = [key(s) for s in stored]
    return torch.tensor([[bool(key(a) & b) for b in stored_keys] for a in new], dtype=torch.bool).reshape(len(new), len(stored))
