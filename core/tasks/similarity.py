"""Task similarity: cosines between task embeddings, and the stored tasks nearest a new one."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.tasks.retrieval import top_k


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
    s = cross_similarity(new, stored)
    if exclude is not None:
        s = s.masked_fill(exclude, float("-inf"))
    index = top_k(s, k)
    return index, s.gather(1, index)


def similarity_coords(s: torch.Tensor) -> torch.Tensor:
    """(t, 2) coordinates of t tasks from their similarity (t, t), by classical scaling: the top two
    eigenvectors of the double-centred matrix, times the square roots of their eigenvalues. For cosines of
    unit vectors this is exactly their PCA (each axis up to sign); it also places tasks that have only a
    similarity (optimally matched prototypes) and no vector."""
    s = (s.double() + s.double().T) / 2
    centred = s - s.mean(0, keepdim=True) - s.mean(1, keepdim=True) + s.mean()
    values, vectors = torch.linalg.eigh(centred)  # ascending
    top = values.flip(0)[:2].clamp_min(0)
    return (vectors.flip(1)[:, :2] * top.sqrt()).float()
