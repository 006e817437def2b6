"""2-D projections of embeddings (PCA, t-SNE, UMAP) and their alignment across checkpoints.

PCA is a covariance eigendecomposition (milliseconds for thousands of points). t-SNE is
openTSNE (exact neighbours and Barnes-Hut with theta 0.8: 5,000 points in 5-9 s here, where
scikit-learn's t-SNE takes 20 s for 2,000) and UMAP is umap-learn; both are imported only when used.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import psutil
from threadpoolctl import threadpool_limits

from core.analysis.neighbours import EXACT_UP_TO, exact_neighbours
from core.data.base import cache_dir
from core.errors import UserError

METHODS = ("pca", "tsne", "umap")
METHOD_LABELS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
METRICS = ("euclidean", "cosine")
# Like TensorBoard's projector: the slow methods run on a seeded sample of at most this many points.
MAX_POINTS = {"pca": None, "tsne": 10_000, "umap": 5_000}
MIN_POINTS = {"pca": 1, "tsne": 5, "umap": 5}
# (early exaggeration, normal) gradient steps. openTSNE's default 250 + 500 cost 27% more CPU on
# 5,000 points for a 10-NN accuracy in 2-D of 0.654 instead of 0.645 (trustworthiness 0.811 vs 0.803).
TSNE_ITERATIONS = (125, 375)
# Barnes-Hut accuracy: 0.8 instead of openTSNE's 0.5 cut the gradient steps on 4,840 Omniglot
# embeddings from 7.1 s to 5.2 s (2 threads) with the same 10-NN accuracy in 2-D (0.847 vs 0.845).
TSNE_THETA = 0.8
# Up to the t-SNE sample cap, exact neighbours (one BLAS distance matrix) took 1.2 s for 4,840 points,
# less than annoy's 1.5 s, and do not depend on the thread count.
TSNE_EXACT_NEIGHBOURS_UP_TO = 10_000
UMAP_EXACT_FROM = 4_096  # umap-learn's own switch to approximate neighbours


class ProjectionError(UserError):
    """A projection cannot be computed as asked; the message says what to change."""


@dataclass(frozen=True)
class ProjectionParams:
    """The settings of a projection; each method reads the ones it uses."""

    perplexity: float = 30.0  # t-SNE: the effective number of neighbours each point keeps
    n_neighbors: int = 15  # UMAP: the size of the neighbourhood it preserves
    min_dist: float = 0.1  # UMAP: how tightly points may pack together
    metric: str = "euclidean"  # euclidean | cosine; PCA with cosine works on unit-length vectors

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ProjectionError(f"unknown metric '{self.metric}'; use {' or '.join(METRICS)}")
        if self.perplexity <= 0 or self.n_neighbors < 2 or not 0.0 <= self.min_dist <= 1.0:
            raise ProjectionError("use perplexity > 0, n_neighbors >= 2 and min_dist in [0, 1]")


def fitted_params(method: str, params: ProjectionParams, n: int) -> ProjectionParams:
    """`params` lowered to what `n` points allow (t-SNE needs perplexity < n/3, UMAP n_neighbors < n)."""
    if method == "tsne":
        return replace(params, perplexity=min(params.perplexity, max((n - 1) / 3.0, 1.0)))
    if method == "umap":
        return replace(params, n_neighbors=min(params.n_neighbors, max(n - 1, 2)))
    return params


def sample_for(method: str, n: int, seed: int = 0) -> np.ndarray | None:
    """Sorted row indices of the seeded sample `method` runs on, or None when it takes all n points."""
    cap = MAX_POINTS[method]
    if cap is None or n <= cap:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def project(x: np.ndarray, method: str, params: ProjectionParams | Mapping | None = None, seed: int = 0) -> np.ndarray:
    """Embeddings (n, d) -> float32 coordinates (n, 2). The same input, method, params and seed give the same output.

    Callers with more points than MAX_POINTS[method] should project sample_for(...) only: this
    function projects whatever it is given.
    """
    if method not in METHODS:
        raise ProjectionError(f"unknown projection '{method}'; use one of {', '.join(METHODS)}")
    params = params if isinstance(params, ProjectionParams) else ProjectionParams(**(params or {}))
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ProjectionError(f"expected embeddings (n, d), got shape {x.shape}")
    if x.shape[0] < MIN_POINTS[method]:
        need = MIN_POINTS[method]
        raise ProjectionError(f"{METHOD_LABELS[method]} needs at least {need} points, got {x.shape[0]}; use PCA or more points")
    params = fitted_params(method, params, x.shape[0])
    if method == "pca":
        return pca(_unit_rows(x) if params.metric == "cosine" else x)
    if method == "tsne":
        return _tsne(x, params, seed)
    return _umap(x, params, seed)


def pca(x: np.ndarray, k: int = 2) -> np.ndarray:
    """(n, d) -> (n, k) coordinates on the top-k principal axes; missing axes (d < k) are zero.

    Each axis is signed so its largest loading is positive, so the picture never flips between calls.
    """
    centred = x.astype(np.float64) - x.astype(np.float64).mean(0)
    # eigh of the (d, d) covariance: O(n d^2), far cheaper than an SVD of (n, d) when n >> d. One BLAS
    # thread: with the cores busy, OpenBLAS's 2 threads took 20x longer (0.23 s vs 0.01 s for 5,000 x 64).
    with threadpool_limits(1, user_api="blas"):
        _, vectors = np.linalg.eigh(centred.T @ centred)
        axes = vectors[:, ::-1][:, :k]  # (d, <=k), largest variance first
        axes = axes * np.sign(axes[np.abs(axes).argmax(0), np.arange(axes.shape[1])])
        out = np.zeros((x.shape[0], k), dtype=np.float32)
        out[:, : axes.shape[1]] = centred @ axes
    return out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def free_cores(most: int = 2, sample_s: float = 0.2) -> int:
    """Threads worth starting now: the cores left idle over the last `sample_s` seconds (at least 1, at most `most`).

    openTSNE's threads meet at a barrier every step, so one thread on a busy core stalls all:
    with the cores busy, 2 threads took twice the CPU time of 1 and no less wall time (measured).
    A short sample, not the 1-minute load average: that lags by a minute, and after a training run
    it kept t-SNE on one thread (12 s instead of 8 s for 5,000 points) with both cores idle.
    """
    cores = os.cpu_count() or 1
    busy = psutil.cpu_percent(interval=sample_s) / 100.0 * cores
    return max(1, min(most, round(cores - busy)))


def _tsne(x: np.ndarray, params: ProjectionParams, seed: int) -> np.ndarray:
    from openTSNE import TSNE
    from openTSNE.affinity import PerplexityBasedNN

    # Neighbours on one thread: annoy's index (used above the exact limit) depends on the thread count,
    # and with it the picture. The gradient steps give the same float32 result on 1 or 2 threads (checked),
    # so they use what is free.
    knn = "exact" if x.shape[0] <= TSNE_EXACT_NEIGHBOURS_UP_TO else "annoy"
    affinities = PerplexityBasedNN(x, params.perplexity, method=knn, metric=params.metric, n_jobs=1, random_state=seed)
    tsne = TSNE(
        theta=TSNE_THETA,
        initialization="pca",
        early_exaggeration_iter=TSNE_ITERATIONS[0],
        n_iter=TSNE_ITERATIONS[1],
        n_jobs=free_cores(),
        random_state=seed,
    )
    return np.asarray(tsne.fit(x, affinities=affinities), dtype=np.float32)


@functools.cache
def _umap_class() -> type:
    """umap.UMAP, with numba's on-disk cache turned on for every jitted function of umap and pynndescent.

    umap-learn caches only a few of its functions, so each new process spent 20-50 s compiling
    the rest on its first fit; with all of them cached that first fit takes about a second.
    """
    if "numba" not in sys.modules:  # numba reads its cache folder once, when first imported
        os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))
    import umap
    from numba.core.dispatcher import Dispatcher
    from numba.core.errors import NumbaWarning

    # pynndescent's nn_descent uses dynamic globals: numba says it cannot cache it, and compiles it per process
    warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=NumbaWarning)
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("umap", "pynndescent"):
            for value in list(vars(module).values()):
                if isinstance(value, Dispatcher):
                    value.enable_caching()
    return umap.UMAP


def _umap(x: np.ndarray, params: ProjectionParams, seed: int) -> np.ndarray:
    # From 4,096 points umap-learn would search neighbours with NN-descent (compiled anew in every process):
    # exact ones are faster at these sizes and give the same or a better graph. Below, it is exact already.
    knn = exact_neighbours(x, params.n_neighbors, params.metric) if UMAP_EXACT_FROM <= x.shape[0] <= EXACT_UP_TO else (None, None)
    model = _umap_class()(
        precomputed_knn=knn,
        n_neighbors=params.n_neighbors,
        min_dist=params.min_dist,
        metric=params.metric,
        init="pca",  # spectral init is 10x slower here on clustered embeddings (disconnected graph)
        n_epochs=None,  # umap's own choice (500 below 10,000 points): 200 saved half the time but lost 4 points of 10-NN accuracy
        low_memory=True,
        random_state=seed,
    )
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": that is the point of a seed
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(model.fit_transform(x), dtype=np.float32)


def params_dict(params: ProjectionParams, method: str) -> dict[str, float | int | str]:
    """Only the settings `method` uses, for display and file names."""
    used = {"pca": ("metric",), "tsne": ("perplexity", "metric"), "umap": ("n_neighbors", "min_dist", "metric")}[method]
    return {k: v for k, v in asdict(params).items() if k in used}


def align(reference: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`y` (n, 2) rotated, reflected, scaled and shifted to best match `reference` (n, 2) (Procrustes).

    Projections of the same points from two checkpoints can come out mirrored or turned; aligning
    each to a fixed reference keeps a checkpoint slider from flipping the view.
    """
    if reference.shape != y.shape:
        raise ProjectionError(f"align needs the same points: reference {reference.shape} vs {y.shape}")
    ref_mean, y_mean = reference.mean(0), y.mean(0)
    a, b = reference - ref_mean, y - y_mean
    u, s, vt = np.linalg.svd(b.T @ a)  # orthogonal Procrustes: R = U V^T maximises tr(R^T B^T A)
    rotation = u @ vt
    norm = (b**2).sum()
    scale = s.sum() / norm if norm > 0 else 1.0
    return (scale * b @ rotation + ref_mean).astype(np.float32)
