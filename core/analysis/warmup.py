"""Paying UMAP's and t-SNE's first-call costs (imports, numba compilation) in the background.

The Embeddings page calls start_warmup() when it opens, so the UMAP or t-SNE a user asks for next
does not wait ~20 s for numba. (Not at server start: the compiled code would then sit in the
memory of every dashboard, also of those that never project.) Compiled code is cached on disk
(see core/analysis/__init__.py), so later processes only load it.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from core.analysis.projection import ProjectionParams, project

log = logging.getLogger(__name__)
_lock = threading.Lock()
_thread: threading.Thread | None = None
_errors: list[str] = []


def _warm() -> None:
    x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    small = ProjectionParams(perplexity=5, n_neighbors=5)
    steps = {
        "umap": lambda: project(x, "umap", small),
        "tsne": lambda: project(x, "tsne", small),
        # not pynndescent's NN-descent: UMAP gets exact neighbours up to 50,000 points (core.analysis.neighbours)
        "umap (large inputs)": lambda: project(np.tile(x, (70, 1)) + 0.01 * np.arange(4200)[:, None], "umap", small),
    }
    for name, step in steps.items():
        try:
            step()
        except Exception as exc:  # the real call will raise with its own message; here only note it
            _errors.append(f"{name}: {type(exc).__name__}: {exc}")
            log.warning("warming up %s failed: %s", name, exc)


def start_warmup() -> threading.Thread:
    """Start the warm-up thread once per process (later calls return the same thread)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_warm, name="metascope-warmup", daemon=True)
            _thread.start()
        return _thread


def warmup_errors() -> list[str]:
    """What failed while warming up (empty when all went well or it has not finished)."""
    return list(_errors)
