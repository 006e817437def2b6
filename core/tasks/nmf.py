"""Non-negative matrix factorisation of a task x feature matrix: a few parts every task is a mix of.

X (t, f) ≈ W (t, k) · H (k, f), all non-negative. A row of W is a task's loading on each factor; a row
of H says which features (classes, groups, embedding units) make up a factor. With class-membership
features and tasks drawn within groups, the factors recover the groups: read them from the top
classes of each factor and from the groups of the tasks that load on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import NMF

from core.episodes import EpisodeSpec


@dataclass(frozen=True)
class NMFResult:
    """loadings (t, k), factors (k, f), feature_names (f,), relative reconstruction error ||X − WH|| / ||X||."""

    loadings: np.ndarray
    factors: np.ndarray
    feature_names: list[str]
    error: float

    @property
    def reconstruction(self) -> np.ndarray:
        return self.loadings @ self.factors


def membership_matrix(specs: Sequence[EpisodeSpec], class_ids: Sequence[int]) -> np.ndarray:
    """(t, c) 1 where task t holds class class_ids[c], else 0."""
    column = {c: j for j, c in enumerate(class_ids)}
    x = np.zeros((len(specs), len(class_ids)))
    for i, spec in enumerate(specs):
        x[i, [column[c] for c in spec.class_ids]] = 1.0
    return x


def task_nmf(x: np.ndarray, feature_names: Sequence[str], n_factors: int = 3, seed: int = 0) -> NMFResult:
    """Factorise a non-negative task x feature matrix x (t, f) into n_factors parts."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(feature_names):
        raise ValueError(f"expected a (tasks, {len(feature_names)}) matrix, got {x.shape}")
    if (x < 0).any():
        raise ValueError("NMF needs non-negative task features; use memberships, histograms or non-negative embeddings")
    if not 1 <= n_factors <= min(x.shape):
        raise ValueError(f"use 1 to {min(x.shape)} NMF factors, the smaller side of the matrix (got {n_factors})")
    model = NMF(n_components=n_factors, init="nndsvda", random_state=seed, max_iter=1000)
    w = model.fit_transform(x)
    h = model.components_
    error = float(np.linalg.norm(x - w @ h) / max(np.linalg.norm(x), 1e-12))
    return NMFResult(w, h, list(feature_names), error)


def top_features(result: NMFResult, top: int = 5) -> list[list[tuple[str, float]]]:
    """Per factor, the `top` features with the largest weight in H: [[(name, weight), ...], ...]."""
    return [[(result.feature_names[j], float(row[j])) for j in np.argsort(-row)[:top]] for row in result.factors]


NEGLIGIBLE = 0.01  # a label loading less than this share of the factor's top label's is not one of its top labels


def top_labels(result: NMFResult, task_labels: Sequence[str], top: int = 3) -> list[list[tuple[str, float]]]:
    """Per factor, the task labels (e.g. the group each task was drawn in) with the highest mean loading; labels
    that load next to nothing on it (a factor that is one group's alone) are left out rather than listed at 0.00."""
    labels = np.asarray(task_labels)
    names = sorted(set(task_labels))
    means = np.stack([result.loadings[labels == n].mean(0) for n in names])  # (labels, k)
    return [
        [(names[i], float(means[i, f])) for i in np.argsort(-means[:, f])[:top] if means[i, f] > NEGLIGIBLE * means[:, f].max()]
        for f in range(means.shape[1])
    ]
