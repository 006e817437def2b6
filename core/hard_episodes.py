"""Training episodes shaped like Lake's test: classes from one alphabet, support written by one drawer.

A random episode mixes alphabets, so most of its classes differ in script style and are easy to tell apart;
Lake's runs take all 20 characters from one alphabet. Here a share of episodes does the same (with rotated
copies, a rotated alphabet is an alphabet of its own), and optionally every support image comes from one
drawer and no query from that drawer, as in the test.
"""

from __future__ import annotations

import torch

from core.augment import AugmentedSampler, augment_from
from core.config import TrainConfig
from core.data.base import DataError
from core.episodes import ClassPool, EpisodeSampler


class HardEpisodeSampler(EpisodeSampler):
    """EpisodeSampler whose draws take `within_share` of episodes from one group and, with `split_drawers`,
    the support of all classes from one drawer (k_shot must then be 1) and the queries from the others.
    """

    def __init__(
        self,
        pool: ClassPool,
        n_way: int,
        k_shot: int,
        q_query: int,
        seed: int = 0,
        within_share: float = 0.0,
        split_drawers: bool = False,
        ahead: int = 32,
    ):
        super().__init__(pool, n_way, k_shot, q_query, seed, ahead)
        self.within_share = within_share
        self.split_drawers = split_drawers
        self.groups = _group_members(pool, n_way) if within_share > 0 else []
        if split_drawers:
            if k_shot != 1:
                raise DataError(f"support and queries by different drawers take one support image per class, not {k_shot}", "k_shot")
            if pool.image_set.drawers is None:
                raise DataError(f"{pool.image_set.name} does not say who drew each image; train without split drawers", "split_drawers")
            self.row_drawers = pool.image_set.drawers[pool.image_ids]  # (n,) drawer of each pool row

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Local classes (n_way,) and in-class positions (n_way, k_shot + q_query)."""
        g = self.generator
        if self.groups and float(torch.rand(1, generator=g)) < self.within_share:
            members = self.groups[int(torch.randint(len(self.groups), (1,), generator=g))]
            classes = members[torch.randperm(len(members), generator=g)[: self.shape.n_way]]
        else:
            classes = torch.randperm(self.pool.n_classes, generator=g)[: self.shape.n_way]
        scores = torch.rand(self._invalid[classes].shape, generator=g).masked_fill_(self._invalid[classes], 2.0)
        if self.split_drawers:
            scores = self._support_by_one_drawer(classes, scores)
        return classes, scores.argsort(dim=1)[:, : self.shape.per_class]

    def _support_by_one_drawer(self, classes: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Scores (n_way, max count) that put one drawer's image first in every class and its others last-but-invalid."""
        width = scores.shape[1]
        rows = self.pool.starts[classes].unsqueeze(1) + torch.arange(width)  # (n_way, width), past-count rows masked below
        drawers = self.row_drawers[rows.clamp(max=len(self.row_drawers) - 1)]
        valid = ~self._invalid[classes]
        common = set.intersection(*(set(d[v].tolist()) for d, v in zip(drawers, valid, strict=True)))
        if not common:  # no drawer wrote all these classes: fall back to a plain draw
            return scores
        options = sorted(common)
        drawer = options[int(torch.randint(len(options), (1,), generator=self.generator))]
        mine = (drawers == drawer) & valid
        first = mine & (mine.cumsum(1) == 1)  # the drawer's first image of each class is the support
        scores = scores.masked_fill(mine, 1.5)  # the drawer's other images: after every query candidate
        return scores.masked_fill(first, -1.0).masked_fill(self._invalid[classes], 2.0)


def _group_members(pool: ClassPool, n_way: int) -> list[torch.Tensor]:
    """Local class ids of each (group, rotation) with at least n_way classes."""
    groups = pool.image_set.class_groups
    if groups is None:
        raise DataError(f"{pool.image_set.name} has no alphabets (class groups); train without within-alphabet episodes", "within_alphabet")
    members: dict[tuple[str, int], list[int]] = {}
    for j, (class_id, turn) in enumerate(zip(pool.class_ids, pool.rotations, strict=True)):
        members.setdefault((groups[class_id], turn), []).append(j)
    usable = [torch.tensor(m) for _, m in sorted(members.items()) if len(m) >= n_way]
    if not usable:
        largest = max(len(m) for m in members.values())
        raise DataError(
            f"no alphabet has {n_way} classes, the largest has {largest}; use at most {largest} classes per episode "
            "or train without within-alphabet episodes",
            "n_way",
        )
    return usable


def training_sampler(pool: ClassPool, train: TrainConfig) -> EpisodeSampler | AugmentedSampler:
    """The training episode stream a config asks for: plain, Lake-like (within an alphabet, split drawers), augmented."""
    shape = train.train_shape
    if train.within_alphabet or train.split_drawers:
        sampler: EpisodeSampler = HardEpisodeSampler(
            pool, shape.n_way, shape.k_shot, shape.q_query, train.seed, train.within_alphabet, train.split_drawers
        )
    else:
        sampler = EpisodeSampler(pool, shape.n_way, shape.k_shot, shape.q_query, train.seed)
    augment = augment_from(train)
    return AugmentedSampler(sampler, augment, train.seed) if augment.active else sampler
