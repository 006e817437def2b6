"""The pair and triplet losses of the metric-learning articles, as plain functions."""

from __future__ import annotations

import torch


def contrastive_loss(d: torch.Tensor, y: torch.Tensor, margin: float, reduce: bool = True) -> torch.Tensor:
    """L = y·d + (1 − y)·max(0, m − d), averaged (or per pair, reduce=False). d: (p,) pair distances; y: (p,) 1 same, 0 different."""
    y = y.to(d.dtype)
    per_pair = y * d + (1 - y) * torch.clamp(margin - d, min=0)
    return per_pair.mean() if reduce else per_pair


def triplet_loss(d_ap: torch.Tensor, d_an: torch.Tensor, margin: float) -> torch.Tensor:
    """L = max(0, d(a,p) − d(a,n) + m), averaged over triplets. d_ap, d_an: (..., t) -> (...): one mean per episode."""
    return torch.clamp(d_ap - d_an + margin, min=0).mean(-1)
