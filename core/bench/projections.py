"""Projection timings on real embeddings, after the warm-up the dashboard runs at start."""

from __future__ import annotations

import numpy as np

from core.analysis.embeddings import embed_images
from core.analysis.projection import project, sample_for
from core.analysis.warmup import start_warmup, warmup_errors
from core.bench.measure import timed
from core.episodes import ClassPool
from core.learners import MetaLearner


def bench_projections(learner: MetaLearner, pool: ClassPool, n: int, large: int, seed: int = 0) -> dict[str, float | int | None]:
    """Seconds for PCA, UMAP and t-SNE of `n` embeddings, and for a `large` set the way the projector samples it.

    The `large` set repeats the pool's embeddings with a little noise when the pool has fewer points.
    n == 0 skips them all: every figure is None.
    """
    if n == 0:
        return {"projection_points": 0, "large_points": 0} | {f"{m}{s}_s": None for m in ("pca", "umap", "tsne") for s in ("5k", "50k")}
    warm_s, _ = timed(lambda: start_warmup().join())
    rng = np.random.default_rng(seed)
    z = embed_images(learner, pool.images, normalisation=pool.image_set.normalisation)  # (pool size, d)
    points = z[rng.choice(len(z), n, replace=len(z) < n)]
    out: dict[str, float | int | None] = {"projection_points": n, "projection_warmup_s": warm_s, "warmup_errors": len(warmup_errors())}
    for method in ("pca", "umap", "tsne"):
        out[f"{method}5k_s"], _ = timed(lambda m=method: project(points, m, seed=seed))
    out["large_points"] = large
    out["pca50k_s"] = out["umap50k_s"] = None
    if large:
        many = z[rng.choice(len(z), large)] + rng.normal(scale=0.01 * z.std(), size=(large, z.shape[1])).astype(np.float32)
        out["pca50k_s"], _ = timed(lambda: project(many, "pca", seed=seed))
        out["umap50k_s"], _ = timed(lambda: _sampled(many, "umap", seed))
    return out


def _sampled(x: np.ndarray, method: str, seed: int) -> np.ndarray:
    """What the dashboard does with many points: project the method's seeded sample."""
    rows = sample_for(method, len(x), seed)
    return project(x if rows is None else x[rows], method, seed=seed)
