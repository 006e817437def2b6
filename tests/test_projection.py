"""Projections: shapes, seeded determinism, PCA against an SVD, parameter fitting, Procrustes alignment."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.neighbours import exact_neighbours
from core.analysis.projection import (
    MAX_POINTS,
    ProjectionError,
    ProjectionParams,
    align,
    fitted_params,
    pca,
    project,
    sample_for,
)


def clusters(n: int = 300, d: int = 16, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centres = rng.normal(size=(k, d)) * 6
    return (centres[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


def cluster_separation(y: np.ndarray, labels: np.ndarray) -> float:
    """Mean distance between cluster centres over mean spread within clusters (high = clusters kept apart)."""
    centres = np.stack([y[labels == c].mean(0) for c in np.unique(labels)])
    within = np.mean([np.linalg.norm(y[labels == c] - centres[i], axis=1).mean() for i, c in enumerate(np.unique(labels))])
    between = np.linalg.norm(centres[:, None] - centres[None], axis=2)[np.triu_indices(len(centres), 1)].mean()
    return float(between / within)


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_projection_shape_determinism_and_structure(method: str) -> None:
    x, labels = clusters()
    params = ProjectionParams(perplexity=20, n_neighbors=10)
    first = project(x, method, params, seed=3)
    assert first.shape == (300, 2) and first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, project(x, method, params, seed=3))
    assert cluster_separation(first, labels) > 3.0  # five well-separated blobs stay apart in 2-D


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_equal_vectors_land_on_one_spot(method: str) -> None:
    """A 1-shot support image and its prototype are the same vector: the picture must not draw them apart."""
    x, _ = clusters(n=60)
    doubled = np.concatenate([x, x[:5]])  # rows 60..64 equal rows 0..4
    y = project(doubled, method, ProjectionParams(perplexity=10, n_neighbors=8), seed=0)
    np.testing.assert_array_equal(y[60:], y[:5])
    assert len(np.unique(y[:60], axis=0)) == 60  # distinct vectors stay distinct


def test_pca_matches_numpy_svd_up_to_sign() -> None:
    x, _ = clusters(200, 10)
    centred = x.astype(np.float64) - x.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    expected = u[:, :2] * s[:2]
    got = pca(x)
    for axis in range(2):
        sign = np.sign(expected[:, axis] @ got[:, axis])
        np.testing.assert_allclose(got[:, axis], sign * expected[:, axis], rtol=1e-4, atol=1e-3)


def test_pca_of_one_dimensional_data_pads_with_zeros() -> None:
    y = pca(np.arange(6, dtype=np.float32)[:, None])
    assert y.shape == (6, 2) and np.all(y[:, 1] == 0)
    np.testing.assert_allclose(np.abs(y[:, 0]), np.abs(np.arange(6) - 2.5))


def test_cosine_pca_ignores_vector_length() -> None:
    x, _ = clusters(50, 8)
    scaled = x * np.random.default_rng(1).uniform(0.5, 5, size=(50, 1)).astype(np.float32)
    cosine = ProjectionParams(metric="cosine")
    np.testing.assert_allclose(project(x, "pca", cosine), project(scaled, "pca", cosine), atol=1e-5)


def test_parameters_are_fitted_to_small_inputs_and_checked() -> None:
    params = ProjectionParams(perplexity=30, n_neighbors=15)
    assert fitted_params("tsne", params, 31).perplexity == 10
    assert fitted_params("umap", params, 8).n_neighbors == 7
    assert fitted_params("pca", params, 8) == params
    assert project(clusters(12)[0], "tsne", params, seed=0).shape == (12, 2)  # perplexity 30 on 12 points would fail
    with pytest.raises(ProjectionError, match="at least 5 points"):
        project(np.zeros((3, 4), np.float32), "umap")
    with pytest.raises(ProjectionError, match="unknown projection"):
        project(np.zeros((10, 4), np.float32), "mds")
    with pytest.raises(ProjectionError, match="metric"):
        ProjectionParams(metric="manhattan")
    assert project(np.zeros((10, 4), np.float32), "pca", {"metric": "cosine"}).shape == (10, 2)  # a dict works too


def test_large_inputs_are_sampled_like_the_projector() -> None:
    assert sample_for("pca", 50_000) is None and sample_for("umap", 5_000) is None
    rows = sample_for("umap", 12_000, seed=1)
    assert len(rows) == MAX_POINTS["umap"] and len(set(rows.tolist())) == len(rows) and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, sample_for("umap", 12_000, seed=1))
    assert len(sample_for("tsne", 12_000)) == MAX_POINTS["tsne"]


def test_procrustes_recovers_a_rotated_reflected_scaled_shifted_copy() -> None:
    reference = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    theta = 2.1
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = (3.5 * reference @ rotation @ np.diag([1, -1]) + np.array([10.0, -4.0])).astype(np.float32)
    np.testing.assert_allclose(align(reference, moved), reference, atol=1e-4)
    with pytest.raises(ProjectionError, match="same points"):
        align(reference, moved[:10])


@pytest.mark.filterwarnings("ignore:Cannot cache compiled function")  # pynndescent's search: compiled per process, by design
def test_warmup_starts_once_and_compiles_without_errors() -> None:
    from core.analysis.warmup import start_warmup, warmup_errors

    thread = start_warmup()
    assert start_warmup() is thread and thread.daemon
    thread.join(600)
    assert not thread.is_alive() and warmup_errors() == []


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_exact_neighbours_equal_a_brute_force_search(metric: str) -> None:
    from sklearn.neighbors import NearestNeighbors

    x, _ = clusters(n=700, d=12)
    x[5] = x[4]  # an exact duplicate: each point must still come first in its own list
    indices, distances = exact_neighbours(x, 8, metric, block=64)  # blocks that do not divide n
    ref_d, ref_i = NearestNeighbors(n_neighbors=8, metric=metric, algorithm="brute").fit(x).kneighbors(x)
    assert (indices[:, 0] == np.arange(700)).all() and (distances[:, 0] == 0).all()
    np.testing.assert_allclose(distances, ref_d, rtol=1e-3, atol=1e-3)
    assert (indices[:, 1:] == ref_i[:, 1:]).mean() > 0.99  # ties aside, the same neighbours in the same order
    assert indices[4, 1] == 5 and indices[5, 1] == 4


def test_umap_of_thousands_uses_exact_neighbours_and_keeps_clusters(monkeypatch) -> None:
    """From 4,096 points UMAP gets exact neighbours (no NN-descent); the picture keeps the structure."""
    import core.analysis.projection as projection

    calls = []
    monkeypatch.setattr(projection, "exact_neighbours", lambda *a: calls.append(a[1:]) or exact_neighbours(*a))
    x, labels = clusters(n=4200, d=16, k=6)
    y = project(x, "umap", ProjectionParams(n_neighbors=10), seed=0)
    assert calls == [(10, "euclidean")] and y.shape == (4200, 2)
    assert cluster_separation(y, labels) > 3.0
