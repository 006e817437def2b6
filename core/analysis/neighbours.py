"""Exact k nearest neighbours by brute force in blocks: one matrix product per block of rows.

UMAP asks for neighbours first. umap-learn computes them exactly below 4,096 points and with
pynndescent's NN-descent above; NN-descent's core cannot be cached by numba, so every process
compiled it again (about 10 s of CPU and 100 MB more memory) before its first large UMAP. Exact
neighbours of the 5,000 points UMAP is given (the projector's cap) take a fraction of a second.
"""

from __future__ import annotations

import numpy as np

# n^2 distances in blocks: 50,000 points is 2.5e9 distances, a few seconds; beyond that NN-descent wins
EXACT_UP_TO = 50_000


def exact_neighbours(x: np.ndarray, k: int, metric: str = "euclidean", block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest points, itself first -> indices (n, k) int64, distances (n, k) float32, nearest first.

    metric: 'euclidean' (plain, not squared) or 'cosine' (1 - cosine similarity), as UMAP reads them.
    """
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown metric '{metric}'; use euclidean or cosine")
    x = np.asarray(x, dtype=np.float32)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = x.shape[0]
    k = min(k, n)
    squares = np.einsum("ij,ij->i", x, x)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        d2 = squares[rows, None] - 2.0 * (x[rows] @ x.T) + squares[None, :]  # (b, n) squared distances
        np.maximum(d2, 0.0, out=d2)
        own = np.arange(rows.stop - rows.start)
        d2[own, start + own] = -1.0  # each point its own first neighbour, also among exact duplicates
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
        near_d2 = np.take_along_axis(d2, nearest, axis=1)
        order = np.argsort(near_d2, axis=1, kind="stable")
        indices[rows] = np.take_along_axis(nearest, order, axis=1)
        near_d2 = np.maximum(np.take_along_axis(near_d2, order, axis=1), 0.0)
        # unit vectors: |a - b|^2 = 2 - 2 cos(a, b), so 1 - cos = |a - b|^2 / 2
        distances[rows] = near_d2 / 2.0 if metric == "cosine" else np.sqrt(near_d2)
    return indices, distances
