"""Embeddings of an episode or of a sample of a dataset's splits, with what each point is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.data.base import DataError, ImageSet, Normalisation
from core.data.splits import ClassSplit
from core.episodes import Episode, to_float
from core.learners import MetaLearner
from core.learners.scoring import pairwise_distance, prototypes

NO_PREDICTION = -1  # support points are given, not predicted


@dataclass(frozen=True)
class PointSet:
    """Embedded images; row i of every array describes point i.

    z: float32 (n, d) embeddings
    class_ids: int64 (n,) dataset class id of each point
    image_idx: int64 (n,) dataset image index
    group: str (n,) 'support' / 'query' for an episode, the split name for a split sample
    predicted: int64 (n,) predicted dataset class id, NO_PREDICTION where nothing was predicted
    prototypes: float32 (n_way, d) class means of an episode's support, else None
    prototype_class_ids: int64 (n_way,) the class of each prototype, else None
    """

    z: np.ndarray
    class_ids: np.ndarray
    image_idx: np.ndarray
    group: np.ndarray
    predicted: np.ndarray
    prototypes: np.ndarray | None = None
    prototype_class_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return self.z.shape[0]

    def outcome(self) -> np.ndarray:
        """str (n,): 'correct', 'wrong', or 'support' where nothing was predicted."""
        correct = np.where(self.predicted == self.class_ids, "correct", "wrong")
        return np.where(self.predicted == NO_PREDICTION, "support", correct)

    def subset(self, rows: np.ndarray) -> PointSet:
        """The points `rows` (prototypes kept: they summarise the support, not a sample)."""
        take = {k: getattr(self, k)[rows] for k in ("z", "class_ids", "image_idx", "group", "predicted")}
        return PointSet(**take, prototypes=self.prototypes, prototype_class_ids=self.prototype_class_ids)


def check_input(learner: MetaLearner, image_shape: Sequence[int]) -> None:
    """DataError unless the learner was built for images of `image_shape` (c, h, w)."""
    expected = (learner.in_channels, learner.image_size, learner.image_size)
    if tuple(image_shape) != expected:
        raise DataError(
            f"the learner takes {expected[0]}x{expected[1]}x{expected[2]} images but this dataset has "
            f"{'x'.join(map(str, image_shape))}; use the dataset it was trained on, at {expected[1]} px"
        )


def learner_device(learner: MetaLearner) -> torch.device:
    """Where the learner's weights live (the CPU for a learner without weights)."""
    return next(learner.parameters(), torch.empty(0)).device


@torch.no_grad()
def embed_images(learner: MetaLearner, images: torch.Tensor, batch: int = 512, normalisation: Normalisation | None = None) -> np.ndarray:
    """uint8 or float images (n, c, h, w) -> float32 embeddings (n, d), in eval mode, `batch` at a time.

    uint8 images become floats with the dataset's `normalisation` (ImageSet.normalisation), as in training.
    """
    check_input(learner, images.shape[1:])
    device = learner_device(learner)
    was_training = learner.training
    learner.eval()
    try:
        chunks = []
        for i in range(0, images.shape[0], batch):
            x = images[i : i + batch].to(device)
            chunks.append(learner.embed(to_float(x, normalisation) if x.dtype == torch.uint8 else x).float().cpu())
        return torch.cat(chunks).numpy()
    finally:
        learner.train(was_training)


@torch.no_grad()
def embed_episode(learner: MetaLearner, episode: Episode) -> PointSet:
    """Support then query points of an episode, the learner's predictions for the queries, and the prototypes."""
    ids = torch.tensor(episode.class_ids)
    s_z = torch.from_numpy(embed_images(learner, episode.support_x))
    q_z = torch.from_numpy(embed_images(learner, episode.query_x))
    s_y, q_y = episode.support_y.cpu(), episode.query_y.cpu()
    logits = predict_logits(learner, episode, s_z, q_z)
    n_s, n_q = s_y.numel(), q_y.numel()
    return PointSet(
        z=torch.cat([s_z, q_z]).numpy(),
        class_ids=ids[torch.cat([s_y, q_y])].numpy(),
        image_idx=torch.cat([episode.support_idx, episode.query_idx]).numpy(),
        group=np.array(["support"] * n_s + ["query"] * n_q),
        predicted=np.concatenate([np.full(n_s, NO_PREDICTION), ids[logits.argmax(1)].numpy()]),
        prototypes=prototypes(s_z, s_y, episode.n_way).numpy(),
        prototype_class_ids=ids.numpy(),
    )


@torch.no_grad()
def predict_logits(learner: MetaLearner, episode: Episode, support_z: torch.Tensor, query_z: torch.Tensor) -> torch.Tensor:
    """Logits (q, n_way) on the CPU: scored from the embeddings already made where the learner allows."""
    if learner.embedding_only:
        device = learner_device(learner)
        return learner.score(support_z.to(device), episode.support_y.to(device), query_z.to(device), episode.n_way).cpu()
    was_training = learner.training
    learner.eval()
    try:
        return learner(episode.support_x, episode.support_y, episode.query_x, episode.n_way).cpu()
    finally:
        learner.train(was_training)


def sample_splits(image_set: ImageSet, split: ClassSplit, names: Sequence[str], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of at most `n` images from the classes of the splits `names`.

    Returns (image indices (m,) sorted, split name of each (m,)); m = min(n, images available).
    """
    if not names:
        raise DataError("choose at least one split to sample from")
    if n < 1:
        raise DataError(f"asked for {n} points; sample at least 1")
    member = torch.full((image_set.n_classes,), -1)
    for i, name in enumerate(names):
        member[list(split.classes(name))] = i
    in_split = (member[image_set.labels] >= 0).nonzero().flatten()
    if in_split.numel() == 0:
        raise DataError(f"the splits {', '.join(names)} have no images; choose another split")
    chosen = in_split[torch.randperm(in_split.numel(), generator=torch.Generator().manual_seed(seed))[:n]].sort().values
    return chosen.numpy(), np.asarray(names)[member[image_set.labels[chosen]].numpy()]


def embed_sample(learner: MetaLearner, image_set: ImageSet, indices: np.ndarray, groups: np.ndarray, metric: str) -> PointSet:
    """Points for dataset images `indices` (m,) with `groups` (m,) (their split names).

    As there is no support set, a point's prediction is its nearest class mean among the sampled
    classes (leave-one-out, with `metric`): it shows which points the space puts among another class.
    """
    z = embed_images(learner, image_set.images[torch.as_tensor(indices)], normalisation=image_set.normalisation)
    class_ids = image_set.labels[torch.as_tensor(indices)].numpy()
    return PointSet(z, class_ids, np.asarray(indices), np.asarray(groups), nearest_mean_predictions(z, class_ids, metric))


def nearest_mean_predictions(z: np.ndarray, class_ids: np.ndarray, metric: str = "euclidean", chunk: int = 8192) -> np.ndarray:
    """Each point's nearest class mean, leave-one-out: its own class's mean is taken without it.

    z (n, d), class_ids (n,) -> predicted class ids (n,). A class with one point cannot be
    predicted for that point (its mean without it is empty).
    """
    classes, y = np.unique(class_ids, return_inverse=True)
    t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
    y_t = torch.from_numpy(y)
    sums = t.new_zeros(len(classes), t.shape[1]).index_add_(0, y_t, t)
    counts = torch.bincount(y_t, minlength=len(classes)).to(t.dtype)
    means = sums / counts.unsqueeze(1)
    out = np.empty(len(y), dtype=np.int64)
    for start in range(0, len(y), chunk):
        rows = slice(start, start + chunk)
        d = pairwise_distance(t[rows], means, metric)  # (m, C)
        own_count = counts[y_t[rows]] - 1
        own_mean = (sums[y_t[rows]] - t[rows]) / own_count.clamp_min(1).unsqueeze(1)
        own = _rowwise(t[rows], own_mean, metric)
        d[torch.arange(d.shape[0]), y_t[rows]] = torch.where(own_count > 0, own, torch.full_like(own, float("inf")))
        out[rows] = classes[d.argmin(1).numpy()]
    return out


def _rowwise(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    """Distance between row i of a and row i of b: (m, d), (m, d) -> (m,), as pairwise_distance measures it."""
    if metric == "cosine":
        return 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=1)
    return (a - b).pow(2).sum(1)
