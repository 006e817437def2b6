"""What a learner compares on an episode (query x class, support x support, attention) and neighbours in its space."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.analysis.embeddings import check_input, embed_images, learner_device
from core.episodes import Episode
from core.learners import MetaLearner
from core.learners.scoring import pairwise_distance

# explain() keys holding the query x class comparison, in order of preference
COMPARISON_KEYS = ("distance", "similarity", "relation")
# explain() keys holding a query x support matrix worth showing, in order of preference
QUERY_SUPPORT_KEYS = ("attention", "pair_distance")
NEIGHBOUR_METRICS = ("euclidean", "cosine")


@dataclass(frozen=True)
class EpisodeMatrices:
    """An episode as the learner saw it. Rows of query matrices are queries in episode order.

    kind: which comparison query_class holds: 'distance' (lower = closer), 'similarity' or
          'relation' (higher = closer), or 'logits' for a learner that explains nothing more
    query_class: float (q, n_way);  logits, probabilities: float (q, n_way)
    predicted, true: int (q,) episode labels
    support_support: float (s, s) distances between support images; support_name says which distance
    query_support: float (q, s) from explain() (attention, pair distances), else None; query_support_name its key
    """

    kind: str
    query_class: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    true: np.ndarray
    support_support: np.ndarray
    support_name: str
    query_support: np.ndarray | None = None
    query_support_name: str = ""

    @property
    def lower_is_closer(self) -> bool:
        return self.kind == "distance"


def learner_metric(learner: MetaLearner) -> str:
    """The distance the learner measures with: 'euclidean' (squared) or 'cosine'.

    A learner that measures some other way may say so with a `metric` attribute.
    """
    return getattr(learner, "metric", None) or getattr(learner.config, "distance", "euclidean")


@torch.no_grad()
def episode_matrices(learner: MetaLearner, episode: Episode) -> EpisodeMatrices:
    """The learner's explain() of `episode`, as numpy arrays, plus the support x support distances."""
    check_input(learner, episode.support_x.shape[1:])  # a clear message, not a convolution's shape error
    was_training = learner.training
    learner.eval()
    try:
        explained = learner.explain(episode.support_x, episode.support_y, episode.query_x, episode.n_way)
    finally:
        learner.train(was_training)
    logits = explained["logits"].float().cpu()
    kind = next((k for k in COMPARISON_KEYS if k in explained), "logits")
    support_z = torch.from_numpy(embed_images(learner, episode.support_x))
    support_support, support_name = support_distances(learner, support_z, kind)
    qs_key = next((k for k in QUERY_SUPPORT_KEYS if k in explained), "")
    return EpisodeMatrices(
        kind=kind,
        query_class=explained[kind].float().cpu().numpy(),
        logits=logits.numpy(),
        probabilities=logits.softmax(1).numpy(),
        predicted=logits.argmax(1).numpy(),
        true=episode.query_y.cpu().numpy(),
        support_support=support_support,
        support_name=support_name,
        query_support=explained[qs_key].float().cpu().numpy() if qs_key else None,
        query_support_name=qs_key.replace("_", " "),
    )


@torch.no_grad()
def support_distances(learner: MetaLearner, support_z: torch.Tensor, kind: str) -> tuple[np.ndarray, str]:
    """(s, s) distances between support embeddings (s, d) and what they are.

    A learner that classifies by distance and scores from embeddings alone measures them itself:
    each support image is made a class of its own, so minus its score is exactly its distance
    (squared Euclidean, cosine, or the Siamese network's plain Euclidean). Others get the
    distance their config names, between their embeddings.
    """
    s = support_z.shape[0]
    if kind == "distance" and learner.embedding_only:
        device = learner_device(learner)
        z = support_z.to(device)
        return (-learner.score(z, torch.arange(s, device=device), z, s)).float().cpu().numpy(), "distance (the learner's own)"
    metric = learner_metric(learner)
    return pairwise_distance(support_z, support_z, metric).numpy(), f"{metric} distance between embeddings"


def neighbour_distances(z: np.ndarray, index: int, metric: str = "euclidean") -> np.ndarray:
    """(n,) distance of every point of `z` (n, d) to point `index`: plain Euclidean or cosine (1 - cos)."""
    if metric not in NEIGHBOUR_METRICS:
        raise ValueError(f"unknown metric '{metric}'; use {' or '.join(NEIGHBOUR_METRICS)}")
    if not 0 <= index < z.shape[0]:
        raise IndexError(f"point {index} does not exist; there are {z.shape[0]} points")
    t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
    return pairwise_distance(t[index : index + 1], t, "l2" if metric == "euclidean" else "cosine")[0].numpy()


def nearest_neighbours(z: np.ndarray, index: int, k: int = 8, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """The k points of `z` (n, d) nearest point `index` (itself excluded) -> (rows (k,), distances (k,)), nearest first."""
    d = neighbour_distances(z, index, metric)
    d[index] = np.inf
    k = min(k, z.shape[0] - 1)
    rows = np.argpartition(d, k - 1)[:k] if k > 0 else np.empty(0, dtype=np.int64)
    rows = rows[np.argsort(d[rows], kind="stable")]
    return rows, d[rows]


def most_confused(confusion: Sequence[Sequence[int]], k: int = 10) -> list[tuple[int, int, int]]:
    """The k largest mistakes of a confusion matrix (rows true, columns predicted) -> [(true, predicted, count)], largest first."""
    counts = np.asarray(confusion, dtype=np.int64).copy()
    np.fill_diagonal(counts, 0)
    flat = np.argsort(-counts, axis=None, kind="stable")[:k]
    return [(int(i), int(j), int(counts[i, j])) for i, j in zip(*np.unravel_index(flat, counts.shape), strict=True) if counts[i, j] > 0]
