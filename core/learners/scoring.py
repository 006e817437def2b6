"""Distances and scores shared by the metric-based learners."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "euclidean") -> torch.Tensor:
    """(..., n, d), (..., m, d) -> (..., n, m): squared Euclidean, plain Euclidean ("l2") or cosine distance (1 - cos)."""
    if kind == "cosine":
        return 1.0 - F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(-1, -2)
    # ||a||^2 - 2ab + ||b||^2 as one matmul: much faster than cdist's default on CPU
    sq = (a.pow(2).sum(-1, keepdim=True) - 2.0 * a @ b.transpose(-1, -2) + b.pow(2).sum(-1).unsqueeze(-2)).clamp_min(0.0)
    if kind == "l2":
        return (sq + 1e-12).sqrt()  # epsilon keeps the gradient finite at zero distance
    if kind == "euclidean":
        return sq
    raise ValueError(f"unknown distance '{kind}'; use euclidean, l2 or cosine")


def class_sums(z: torch.Tensor, y: torch.Tensor, n_way: int) -> torch.Tensor:
    """Per-class sums: embeddings (..., s, d) with labels (..., s) in 0..n_way-1 -> (..., n_way, d).

    Leading dims are episodes, each summed on its own (one index_add_ with per-episode offsets).
    """
    if z.dim() == 2:
        return z.new_zeros(n_way, z.shape[-1]).index_add_(0, y, z)
    lead = z.shape[:-2]
    offsets = torch.arange(math.prod(lead), device=y.device).view(*lead, 1) * n_way
    sums = z.new_zeros(math.prod(lead) * n_way, z.shape[-1]).index_add_(0, (y + offsets).flatten(), z.flatten(0, -2))
    return sums.view(*lead, n_way, z.shape[-1])


def prototypes(z: torch.Tensor, y: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class means: embeddings (..., s, d) with labels (..., s) in 0..n_way-1 -> (..., n_way, d)."""
    sums = class_sums(z, y, n_way)
    # index_add_, not bincount: on a GPU bincount reads the labels' maximum back to the host
    counts = class_sums(z.new_ones(*y.shape, 1), y, n_way).clamp_min(1)
    return sums / counts


def nearest_support_logits(distance: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
    """Logits of 1-nearest-neighbour: minus each class's smallest distance. (..., q, s) -> (..., q, n_way)."""
    index = support_y.unsqueeze(-2).expand_as(distance)
    closest = distance.new_full((*distance.shape[:-1], n_way), float("inf")).scatter_reduce(-1, index, distance, "amin")
    return -closest


def episode_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each episode: logits (..., q, n_way), labels (..., q) -> (...); a scalar for one episode."""
    if logits.dim() == 2:
        return F.cross_entropy(logits, y)
    return F.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction="none").view(y.shape).mean(-1)


def infer_n_way(support_y: torch.Tensor, n_way: int | None) -> int:
    """n_way as given, else from the labels (that costs a device sync, so trainers pass it)."""
    return int(n_way) if n_way is not None else int(support_y.max()) + 1


def one_hot(y: torch.Tensor, n_way: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Labels (n,) in 0..n_way-1 -> one-hot rows (n, n_way)."""
    return F.one_hot(y, n_way).to(dtype)


def embed_episode(
    embed: Callable[[torch.Tensor], torch.Tensor], support_x: torch.Tensor, query_x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Support (s, c, h, w) and queries (q, c, h, w) through `embed` in one pass -> ((s, d), (q, d))."""
    z = embed(torch.cat([support_x, query_x]))
    return z[: support_x.shape[0]], z[support_x.shape[0] :]
