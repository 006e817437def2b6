"""Task similarity: cosines between task embeddings, and the stored tasks nearest a new one."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of task embeddings a (m, d) and b (t, d) -> (m, t)."""
    return F.normalize(a, dim=1) @ F.normalize(b, dim=1).T


def similarity_matrix(e: torch.Tensor) -> torch.Tensor:
    """Task x task cosine similarity (t, t) of embeddings e (t, d): symmetric, unit diagonal."""
    s = cross_similarity(e, e)
    s = (s + s.T) / 2  # exact symmetry, whatever the rounding of the matmul
    return s.fill_diagonal_(1.0)


def nearest_tasks(
    stored: torch.Tensor, new: torch.Tensor, k: int, exclude: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k stored tasks most similar to each new task.

    stored (t, d), new (m, d) or (d,) -> (indices (m, k), cosines (m, k)), most similar first.
    exclude: optional (m, t) bool, True where a stored task must not be returned (e.g. the task itself).
    """
    new = new.unsqueeze(0) if new.dim() == 1 else new
    if not 1 <= k <= stored.shape[0]:
        raise ValueError(f"ask for 1 to {stored.shape[0]} nearest tasks, the number stored (got {k})")
    s = cross_similarity(new, stored)
    if exclude is not None:
        s = s.masked_fill(exclude, float("-inf"))
    sims, index = s.topk(k, dim=1)
    return index, sims
