"""The contrastive and triplet losses, their mining and pairing, against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from core.learners.losses import contrastive_loss, triplet_loss
from core.learners.siamese import episode_pairs
from core.learners.triplet import mine_triplets


def test_contrastive_loss_by_hand():
    d = torch.tensor([0.5, 2.0, 0.3, 1.5], requires_grad=True)
    y = torch.tensor([1, 1, 0, 0])
    # positives cost their distance: 0.5, 2.0; negatives max(0, 1 - d): 0.7, 0 -> mean 3.2 / 4
    loss = contrastive_loss(d, y, margin=1.0)
    assert loss.item() == pytest.approx(0.8)
    loss.backward()
    # descent shrinks positive distances, grows a negative inside the margin, ignores one beyond it
    assert d.grad.tolist() == pytest.approx([0.25, 0.25, -0.25, 0.0])


def test_triplet_loss_by_hand():
    d_ap = torch.tensor([0.2, 1.0, 0.5], requires_grad=True)
    d_an = torch.tensor([1.5, 0.8, 0.9], requires_grad=True)
    # max(0, d_ap - d_an + 0.5): 0 (already satisfied), 0.7, 0.1 -> mean 0.8 / 3
    loss = triplet_loss(d_ap, d_an, margin=0.5)
    assert loss.item() == pytest.approx(0.8 / 3)
    loss.backward()
    assert d_ap.grad.tolist() == pytest.approx([0.0, 1 / 3, 1 / 3])
    assert d_an.grad.tolist() == pytest.approx([0.0, -1 / 3, -1 / 3])


def _step(loss_of: callable, a: torch.Tensor, b: torch.Tensor, lr: float = 0.1) -> float:
    """One gradient step on points a, b -> their new distance."""
    a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
    loss_of((a - b).norm()).backward()
    return ((a - lr * a.grad) - (b - lr * b.grad)).norm().item()


def test_contrastive_gradient_pulls_positives_together_and_pushes_close_negatives_apart():
    a, b = torch.tensor([0.0, 0.0]), torch.tensor([0.3, 0.4])  # distance 0.5
    assert _step(lambda d: contrastive_loss(d.view(1), torch.tensor([1]), 1.0), a, b) < 0.5
    assert _step(lambda d: contrastive_loss(d.view(1), torch.tensor([0]), 1.0), a, b) > 0.5
    assert _step(lambda d: contrastive_loss(d.view(1), torch.tensor([0]), 0.4), a, b) == pytest.approx(0.5)  # beyond the margin


def test_triplet_gradient_pulls_the_positive_in_and_pushes_the_negative_out():
    anchor = torch.tensor([0.0, 0.0], requires_grad=True)
    positive = torch.tensor([1.0, 0.0], requires_grad=True)
    negative = torch.tensor([0.0, 1.2], requires_grad=True)
    triplet_loss((anchor - positive).norm().view(1), (anchor - negative).norm().view(1), 1.0).backward()
    with torch.no_grad():
        a, p, n = anchor - 0.1 * anchor.grad, positive - 0.1 * positive.grad, negative - 0.1 * negative.grad
    assert (a - p).norm() < 1.0 and (a - n).norm() > 1.2


def test_batch_hard_mining_takes_farthest_positive_and_nearest_negative():
    z = torch.tensor([[0.0], [1.0], [2.0], [5.0], [6.0]])
    y = torch.tensor([0, 0, 0, 1, 1])
    d_ap, d_an = mine_triplets(z, y)
    assert d_ap.tolist() == pytest.approx([2.0, 1.0, 2.0, 1.0, 1.0], abs=1e-4)
    assert d_an.tolist() == pytest.approx([5.0, 4.0, 3.0, 3.0, 4.0], abs=1e-4)


def test_episode_pairs_are_support_query_and_support_support():
    support_z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    query_z = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    d, same = episode_pairs(support_z, torch.tensor([0, 1]), query_z, torch.tensor([0, 1]))
    # (q0,s0) (q0,s1) (q1,s0) (q1,s1) then (s0,s1)
    assert d.tolist() == pytest.approx([math.sqrt(0.8), math.sqrt(0.4), math.sqrt(2), 0.0, math.sqrt(2)], abs=1e-5)
    assert same.tolist() == [True, False, False, True, False]


def test_an_anchor_alone_in_its_class_adds_no_loss_and_no_nan():
    z = torch.tensor([[0.0], [1.0], [3.0]], requires_grad=True)
    d_ap, d_an = mine_triplets(z, torch.tensor([0, 0, 1]))  # class 1 has a single image
    loss = triplet_loss(d_ap, d_an, margin=1.5)
    loss.backward()
    # anchors 0 and 1: max(0, 1 - 3 + 1.5) = 0 and max(0, 1 - 2 + 1.5) = 0.5; anchor 2 has no positive: 0
    assert loss.item() == pytest.approx(0.5 / 3, abs=1e-5) and torch.isfinite(z.grad).all()
