"""N-way K-shot episodes drawn by tensor indexing from a pool of classes."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import torch

from core.config import EpisodeShape
from core.data.base import DataError, ImageSet, Normalisation


class EpisodeError(DataError):
    """An episode cannot be drawn as asked; the message names the numbers and the fix."""


@dataclass(frozen=True)
class Episode:
    """One few-shot task. Support is ordered class by class: label i occupies rows i*K..(i+1)*K-1.

    support_x: float (n_way*k_shot, c, h, w) in [0, 1];  support_y: int64 (n_way*k_shot,) in 0..n_way-1
    query_x:   float (n_way*q_query, c, h, w);           query_y:   int64 (n_way*q_query,)
    class_ids: the dataset's class id behind each episode label (n_way,)
    rotations: quarter turns applied to each episode class (0 unless rotation augmentation)
    support_idx, query_idx: the dataset's image indices, shaped like support_y / query_y
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    class_ids: tuple[int, ...]
    rotations: tuple[int, ...]
    support_idx: torch.Tensor
    query_idx: torch.Tensor

    @property
    def n_way(self) -> int:
        return len(self.class_ids)

    @property
    def k_shot(self) -> int:
        return self.support_y.numel() // self.n_way

    @property
    def q_query(self) -> int:
        return self.query_y.numel() // self.n_way

    def to(self, device: torch.device | str) -> Episode:
        move = {k: getattr(self, k).to(device) for k in ("support_x", "support_y", "query_x", "query_y")}
        return Episode(**move, class_ids=self.class_ids, rotations=self.rotations, support_idx=self.support_idx, query_idx=self.query_idx)


def check_shape(shape: EpisodeShape, n_classes: int, smallest: int) -> None:
    """EpisodeError unless `shape` can be drawn from `n_classes` classes whose smallest has `smallest` images."""
    if shape.n_way > n_classes:
        raise EpisodeError(
            f"{shape.n_way} classes per episode, but this split has only {n_classes}; "
            f"use at most {n_classes} classes per episode, or a split with more classes",
            "n_way",
        )
    if shape.per_class > smallest:
        raise EpisodeError(
            f"{shape.k_shot} support + {shape.q_query} query images per class make {shape.per_class}, but the smallest class "
            f"has {smallest} images; lower the support or query images so that together they are at most {smallest}",
            "q_query",
        )


def to_float(images: torch.Tensor, normalisation: Normalisation | None = None) -> torch.Tensor:
    """uint8 (..., c, h, w) -> float32 in [0, 1], then standardised by the dataset's normalisation if it has one."""
    floats = images.float().div_(255.0)
    return floats if normalisation is None else normalisation.apply(floats)


SMALL_POOL_BYTES = 64 << 20  # a pool up to this size, rotated copies included, is held turned on its device
RESIDENT_BYTES = 2 << 30  # on a GPU, a split up to this size is copied to the device once; larger ones are read per episode


class PoolImages:
    """A pool's images, read on demand: pool rows -> uint8 (m, c, h, w) on the pool's device.

    For a large pool nothing is copied up front: rows are gathered from the dataset's (memory-mapped)
    images when an episode asks for them, and rotated classes are the same rows turned after the
    gather, so the pool costs memory in proportion to its episodes, not to its split. On a GPU a
    split that fits RESIDENT_BYTES is kept there once (unrotated), and gathering never leaves the
    device. A small pool is simply held, turned, on its device (`direct`). See _pool_images.
    """

    def __init__(self, source: torch.Tensor, source_rows: torch.Tensor, turns: torch.Tensor, device: torch.device):
        self.source = source  # uint8 (N, c, h, w): the dataset's images, or the split's on the device
        self.source_rows = source_rows  # (n,) int64: row of `source` behind each pool row, on source's device
        self.turns = turns  # (n,) int64: quarter turns of each pool row, on source's device
        self.device = device
        self.rotated = bool((turns != 0).any())
        self.direct = bool(torch.equal(source_rows, torch.arange(len(source), device=source_rows.device))) and not self.rotated
        h, w = source.shape[-2:]
        # pixel k of a row turned t times is pixel _turned[t, k] of the original: one gather turns any mix of rows
        self._turned = torch.stack([torch.rot90(torch.arange(h * w).view(h, w), t).reshape(-1) for t in range(4)]).to(source.device)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.source_rows), *self.source.shape[1:]))

    def __len__(self) -> int:
        return len(self.source_rows)

    def __getitem__(self, rows: int | slice | torch.Tensor | Sequence[int]) -> torch.Tensor:
        """uint8 (m, c, h, w) for a slice or 1-D rows, (c, h, w) for one int row."""
        if isinstance(rows, int):
            return self[torch.tensor([rows])][0]
        if not isinstance(rows, slice):
            rows = torch.as_tensor(rows).to(self.source_rows.device)
        if self.direct:  # a small pool held turned on its device: one gather, as an episode always cost
            return self.source[rows]
        images = self.source[self.source_rows[rows]]
        if self.rotated:  # a gather, not a branch per turn: no data-dependent shapes, so no device sync
            m, c = images.shape[:2]
            pixels = self._turned[self.turns[rows]].unsqueeze(1).expand(m, c, -1)  # (m, c, h*w)
            images = images.flatten(2).gather(2, pixels).view(images.shape)
        return images.to(self.device, non_blocking=True)


@dataclass(frozen=True)
class EpisodeBatch:
    """E episodes of one shape stacked, for one forward pass: the same episodes as E calls of sample().

    support_x: float (E, n_way*k_shot, c, h, w);  support_y: int64 (E, n_way*k_shot)
    query_x:   float (E, n_way*q_query, c, h, w); query_y:   int64 (E, n_way*q_query)
    class_ids, rotations: one tuple per episode; support_idx, query_idx: (E, ...) dataset image indices
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    class_ids: tuple[tuple[int, ...], ...]
    rotations: tuple[tuple[int, ...], ...]
    support_idx: torch.Tensor
    query_idx: torch.Tensor

    @property
    def episodes(self) -> int:
        return self.support_y.shape[0]

    def episode(self, i: int) -> Episode:
        """Episode i of the batch."""
        return Episode(
            self.support_x[i], self.support_y[i], self.query_x[i], self.query_y[i],
            self.class_ids[i], self.rotations[i], self.support_idx[i], self.query_idx[i],
        )  # fmt: skip


class ClassPool:
    """The images of a set of classes, grouped by class and read on demand (see PoolImages).

    With rotations=True each class also appears rotated by 90, 180 and 270 degrees as three
    new classes (the standard Omniglot augmentation), so the pool has 4x the classes.
    Local class j is dataset class `class_ids[j]` turned `rotations[j]` quarter turns.
    """

    def __init__(self, image_set: ImageSet, class_ids: Sequence[int], rotations: bool = False, device: torch.device | str = "cpu"):
        if len(class_ids) == 0:
            raise EpisodeError(f"{image_set.name}: this split has no classes; choose another split or dataset")
        ids = torch.as_tensor(list(class_ids), dtype=torch.int64)
        per_class = [image_set.indices_of(int(c)) for c in ids]
        counts = torch.tensor([len(p) for p in per_class])
        image_ids = torch.cat(per_class)
        turns = torch.zeros(len(ids), dtype=torch.int64)
        copies = 4 if rotations else 1
        if rotations:
            image_ids, counts, ids = image_ids.repeat(4), counts.repeat(4), ids.repeat(4)
            turns = torch.arange(4).repeat_interleave(len(class_ids))
        self.image_set = image_set
        self.device = torch.device(device)
        self.images = _pool_images(image_set.images, image_ids, copies, torch.repeat_interleave(turns, counts), self.device)
        self.image_ids = image_ids  # (n,) dataset index of each pool row
        self.counts = counts  # (n_classes,)
        self.starts = torch.cumsum(counts, 0) - counts  # (n_classes,) first pool row of each class
        self.labels = torch.repeat_interleave(torch.arange(len(counts)), counts)  # (n,) local class
        self.class_ids = tuple(int(c) for c in ids)
        self.rotations = tuple(int(t) for t in turns)
        self._label_cache: dict[tuple[int, int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def floats(self, rows: slice | torch.Tensor) -> torch.Tensor:
        """Float images of pool `rows` as learners see them (normalised the dataset's way)."""
        return to_float(self.images[rows], self.image_set.normalisation)

    @property
    def n_classes(self) -> int:
        return len(self.class_ids)

    def check(self, shape: EpisodeShape) -> None:
        """Raise EpisodeError when `shape` cannot be drawn from this pool."""
        check_shape(shape, self.n_classes, int(self.counts.min()))

    def rows(self, classes: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Pool rows for local `classes` (n_way,) at in-class `positions` (n_way, m) -> (n_way, m)."""
        return self.starts[classes].unsqueeze(1) + positions

    def episode(self, classes: torch.Tensor, positions: torch.Tensor, k_shot: int, device_rows: torch.Tensor | None = None) -> Episode:
        """Episode from local `classes` (n_way,) and in-class `positions` (n_way, k_shot+q_query).

        device_rows: the same rows (n_way, k_shot+q_query) already on the pool's device, when the
        caller copied them ahead (EpisodeSampler does, so that a step waits on no host copy).
        """
        rows = self.rows(classes, positions)
        n_way, per_class = rows.shape
        if self.images.source_rows.device.type == "cpu":  # gather on the host, from the memory map
            index = rows
        else:  # the split lives on the device: gather there, with the rows the sampler copied ahead
            index = rows.to(self.device) if device_rows is None else device_rows
        support_y, query_y = self._labels(n_way, k_shot, per_class - k_shot)
        return Episode(
            support_x=self.floats(index[:, :k_shot].reshape(-1)),
            support_y=support_y,
            query_x=self.floats(index[:, k_shot:].reshape(-1)),
            query_y=query_y,
            class_ids=tuple(self.class_ids[int(c)] for c in classes),
            rotations=tuple(self.rotations[int(c)] for c in classes),
            support_idx=self.image_ids[rows[:, :k_shot].reshape(-1)],
            query_idx=self.image_ids[rows[:, k_shot:].reshape(-1)],
        )

    def episode_batch(
        self, classes: torch.Tensor, positions: torch.Tensor, k_shot: int, device_rows: torch.Tensor | None = None
    ) -> EpisodeBatch:
        """E episodes from local `classes` (E, n_way) and in-class `positions` (E, n_way, k_shot+q_query),
        gathered in one indexing per part; device_rows as in episode()."""
        rows = self.starts[classes].unsqueeze(-1) + positions  # (E, n_way, per_class)
        episodes, n_way, per_class = rows.shape
        on_device = rows.to(self.device) if device_rows is None else device_rows
        support_y, query_y = self._labels(n_way, k_shot, per_class - k_shot)
        return EpisodeBatch(
            support_x=to_float(self.images[on_device[..., :k_shot].reshape(episodes, -1)]),
            support_y=support_y.expand(episodes, -1),
            query_x=to_float(self.images[on_device[..., k_shot:].reshape(episodes, -1)]),
            query_y=query_y.expand(episodes, -1),
            class_ids=tuple(tuple(self.class_ids[c] for c in row) for row in classes.tolist()),
            rotations=tuple(tuple(self.rotations[c] for c in row) for row in classes.tolist()),
            support_idx=self.image_ids[rows[..., :k_shot].reshape(episodes, -1)],
            query_idx=self.image_ids[rows[..., k_shot:].reshape(episodes, -1)],
        )

    def _labels(self, n_way: int, k_shot: int, q_query: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Episode labels (n_way*k_shot,), (n_way*q_query,) on the device, made once per shape."""
        cache = self._label_cache
        if (n_way, k_shot, q_query) not in cache:
            labels = torch.arange(n_way, device=self.device)
            cache[n_way, k_shot, q_query] = (labels.repeat_interleave(k_shot), labels.repeat_interleave(q_query))
        return cache[n_way, k_shot, q_query]


def _pool_images(images: torch.Tensor, image_ids: torch.Tensor, copies: int, turns: torch.Tensor, device: torch.device) -> PoolImages:
    """Where a pool reads its rows from, by size (rows: every class copy, rotated ones included).

    Small pools (SMALL_POOL_BYTES with their rotated copies: Omniglot, glyphs) are copied to their device
    once, turned, so an episode is one gather as before. Larger ones on a GPU keep their split there
    unrotated (RESIDENT_BYTES) and turn the drawn rows; the rest read the memory-mapped dataset per episode.
    """
    distinct = image_ids[: len(image_ids) // copies]  # the rotated copies repeat the same rows
    row_bytes = int(torch.tensor(images.shape[1:]).prod())
    if len(image_ids) * row_bytes <= SMALL_POOL_BYTES:
        base = images[distinct]
        turned = torch.cat([torch.rot90(base, k, dims=(2, 3)) for k in range(copies)])
        return PoolImages(turned.to(device), torch.arange(len(image_ids), device=device), torch.zeros_like(turns, device=device), device)
    if device.type == "cpu" or len(distinct) * row_bytes > RESIDENT_BYTES:
        return PoolImages(images, image_ids, turns, device)
    resident = images[distinct].to(device)
    return PoolImages(resident, torch.arange(len(distinct), device=device).repeat(copies), turns.to(device), device)


class EpisodeSampler:
    """Seeded stream of N-way K-shot Q-query episodes; the same seed gives the same episodes on any device.

    Draws are made on the CPU with one seeded generator. For a GPU pool the image rows of the next
    `ahead` episodes go over in one asynchronous copy from pinned memory, so sampling never makes
    a training step wait for the host.
    """

    def __init__(self, pool: ClassPool, n_way: int, k_shot: int, q_query: int, seed: int = 0, ahead: int = 32):
        self.shape = EpisodeShape(n_way, k_shot, q_query)
        pool.check(self.shape)
        self.pool = pool
        self.seed = seed
        self.ahead = max(1, ahead)
        self.generator = torch.Generator().manual_seed(seed)
        # positions past a class's count get score 2 so argsort never picks them
        self._invalid = torch.arange(int(pool.counts.max())).unsqueeze(0) >= pool.counts.unsqueeze(1)
        self._queue: deque[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = deque()  # classes, positions, device rows

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Local classes (n_way,) and in-class positions (n_way, k_shot+q_query), without images."""
        classes = torch.randperm(self.pool.n_classes, generator=self.generator)[: self.shape.n_way]
        scores = torch.rand(self._invalid[classes].shape, generator=self.generator).masked_fill_(self._invalid[classes], 2.0)
        return classes, scores.argsort(dim=1)[:, : self.shape.per_class]

    def sample(self) -> Episode:
        if not self._queue:
            self._draw_ahead()
        classes, positions, rows = self._queue.popleft()
        return self.pool.episode(classes, positions, self.shape.k_shot, rows)

    def sample_batch(self, episodes: int) -> EpisodeBatch:
        """The next `episodes` episodes of the stream, stacked: the same as that many sample() calls."""
        while len(self._queue) < episodes:
            self._draw_ahead()
        classes, positions, rows = zip(*(self._queue.popleft() for _ in range(episodes)), strict=True)
        return self.pool.episode_batch(torch.stack(classes), torch.stack(positions), self.shape.k_shot, torch.stack(rows))

    def _draw_ahead(self) -> None:
        """The next `ahead` draws, their rows copied to the device in one non-blocking transfer."""
        draws = [self.draw() for _ in range(self.ahead)]
        rows = torch.stack([self.pool.rows(c, p) for c, p in draws])  # (ahead, n_way, per_class)
        if self.pool.device.type == "cuda":
            rows = rows.pin_memory()  # a pageable source would make the copy synchronous
        on_device = rows.to(self.pool.device, non_blocking=True)
        self._queue.extend((c, p, r) for (c, p), r in zip(draws, on_device.unbind(0), strict=True))

    def __iter__(self) -> Iterator[Episode]:
        while True:
            yield self.sample()


def build_episode(
    image_set: ImageSet, support: dict[int, Sequence[int]], query: dict[int, Sequence[int]], device: torch.device | str = "cpu"
) -> Episode:
    """An episode from hand-picked images: {class_id: [dataset image index, ...]} for support and query.

    Classes take labels in the order of `support`. Every class needs the same number of
    support images and of query images (balanced episodes, as the learners assume).
    """
    if list(support) != list(query):
        raise EpisodeError("support and query must name the same classes in the same order")
    if len(support) < 2:
        raise EpisodeError(f"an episode needs at least 2 classes, got {len(support)}; add classes")
    k_sizes, q_sizes = {len(v) for v in support.values()}, {len(v) for v in query.values()}
    if len(k_sizes) != 1 or len(q_sizes) != 1 or 0 in k_sizes | q_sizes:
        raise EpisodeError("every class needs the same number (at least 1) of support images and of query images")
    for class_id in support:
        members = set(image_set.indices_of(class_id).tolist())
        chosen = list(support[class_id]) + list(query[class_id])
        if not set(chosen) <= members:
            raise EpisodeError(f"images {sorted(set(chosen) - members)} are not of class {class_id} ({image_set.class_names[class_id]})")
        if len(set(chosen)) != len(chosen):
            raise EpisodeError(f"class {image_set.class_names[class_id]}: an image is used twice; support and query must not share images")
    k, q = k_sizes.pop(), q_sizes.pop()
    s_idx = torch.tensor([i for v in support.values() for i in v])
    q_idx = torch.tensor([i for v in query.values() for i in v])
    labels = torch.arange(len(support))
    return Episode(
        support_x=to_float(image_set.images[s_idx], image_set.normalisation).to(device),
        support_y=labels.repeat_interleave(k).to(device),
        query_x=to_float(image_set.images[q_idx], image_set.normalisation).to(device),
        query_y=labels.repeat_interleave(q).to(device),
        class_ids=tuple(support),
        rotations=(0,) * len(support),
        support_idx=s_idx,
        query_idx=q_idx,
    )


@dataclass(frozen=True)
class EpisodeSpec:
    """Which dataset images make an episode: plain ints, so it can be saved, shared and edited.

    class_ids[i] is episode label i; support[i] / query[i] are its dataset image indices.
    """

    class_ids: tuple[int, ...]
    support: tuple[tuple[int, ...], ...]
    query: tuple[tuple[int, ...], ...]

    @classmethod
    def from_episode(cls, episode: Episode) -> EpisodeSpec:
        if any(episode.rotations):
            raise EpisodeError("a rotated (augmented) episode has no plain image indices; draw it without rotations")
        n = episode.n_way
        s, q = episode.support_idx.reshape(n, -1).tolist(), episode.query_idx.reshape(n, -1).tolist()
        return cls(tuple(episode.class_ids), tuple(map(tuple, s)), tuple(map(tuple, q)))

    def build(self, image_set: ImageSet, device: torch.device | str = "cpu") -> Episode:
        """The Episode with its image tensors (validated: see build_episode)."""
        support = dict(zip(self.class_ids, self.support, strict=True))
        return build_episode(image_set, support, dict(zip(self.class_ids, self.query, strict=True)), device)

    def with_image(self, part: str, class_pos: int, slot: int, image_index: int) -> EpisodeSpec:
        """A copy with one image swapped: part 'support' or 'query', episode class position, slot in that class."""
        rows = [list(r) for r in getattr(self, part)]
        rows[class_pos][slot] = image_index
        return replace(self, **{part: tuple(map(tuple, rows))})

    def to_dict(self) -> dict[str, list]:
        return {"class_ids": list(self.class_ids), "support": [list(r) for r in self.support], "query": [list(r) for r in self.query]}

    @classmethod
    def from_dict(cls, data: dict) -> EpisodeSpec:
        try:
            return cls(
                tuple(map(int, data["class_ids"])),
                tuple(tuple(map(int, r)) for r in data["support"]),
                tuple(tuple(map(int, r)) for r in data["query"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EpisodeError(f"not an episode description: {exc}") from exc


def draw_spec(
    image_set: ImageSet, class_ids: Sequence[int], shape: EpisodeShape, seed: int, fixed_classes: Sequence[int] | None = None
) -> EpisodeSpec:
    """A seeded episode from the classes `class_ids` (a split); with `fixed_classes`, exactly those classes.

    This is what the dashboard's "new episode" button draws; sampling is by index, no images are loaded.
    """
    chosen = list(fixed_classes) if fixed_classes else list(class_ids)
    pool = ClassPool(image_set, chosen)
    if fixed_classes:
        shape = EpisodeShape(len(chosen), shape.k_shot, shape.q_query)
    sampler = EpisodeSampler(pool, shape.n_way, shape.k_shot, shape.q_query, seed)
    classes, positions = sampler.draw()
    if fixed_classes:  # keep the user's class order
        order = classes.argsort()
        classes, positions = classes[order], positions[order]
    rows = pool.image_ids[pool.rows(classes, positions)]
    return EpisodeSpec(
        tuple(pool.class_ids[int(c)] for c in classes),
        tuple(tuple(r[: shape.k_shot].tolist()) for r in rows),
        tuple(tuple(r[shape.k_shot :].tolist()) for r in rows),
    )
