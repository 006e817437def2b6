"""The 2-D metric-learning playground: seeded points, a tiny net, the articles' losses over every pair or triplet."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from core.config import ConfigError
from core.learners.losses import contrastive_loss, triplet_loss
from core.playground import (
    POINT_KINDS,
    PlaygroundConfig,
    Points,
    embed,
    init_state,
    make_points,
    metric_loss,
    train_steps,
    view,
    warp_grid,
)


@pytest.mark.parametrize("kind", POINT_KINDS)
def test_points_are_seeded_balanced_and_in_the_unit_square(kind):
    points = make_points(kind, per_class=20, seed=3)
    again = make_points(kind, per_class=20, seed=3)
    assert torch.equal(points.x, again.x) and torch.equal(points.y, again.y)
    assert not torch.equal(points.x, make_points(kind, per_class=20, seed=4).x)
    classes = 2 if kind == "moons" else 3
    assert points.x.shape == (20 * classes, 2) and points.n_classes == classes
    assert torch.bincount(points.y).tolist() == [20] * classes
    assert points.x.abs().max() < 1.5


def test_bad_settings_say_what_to_change():
    with pytest.raises(ConfigError, match="unknown point set 'stars'"):
        make_points("stars")
    with pytest.raises(ConfigError, match=r"use a loss margin above 0 and at most 10 \(got 0\)"):
        PlaygroundConfig(margin=0)
    with pytest.raises(ConfigError, match="unknown loss 'hinge'"):
        PlaygroundConfig(loss="hinge")
    with pytest.raises(ConfigError, match=r"use a learning rate above 0 and at most 1 \(got 2"):
        PlaygroundConfig(lr=2)


def test_every_pair_and_triplet_enters_the_loss_exactly_as_the_formulas_say():
    points = make_points("rings", per_class=4, seed=0)
    z = embed(init_state(1).params, points.x)
    n = len(points.y)
    d = lambda i, j: float((z[i] - z[j]).norm())
    pairs = list(itertools.combinations(range(n), 2))
    loss, terms = metric_loss(z, points, PlaygroundConfig("contrastive", margin=0.7))
    same = [float(points.y[i] == points.y[j]) for i, j in pairs]
    reference = sum(s * d(i, j) + (1 - s) * max(0.0, 0.7 - d(i, j)) for (i, j), s in zip(pairs, same, strict=True)) / len(pairs)
    assert len(terms) == len(pairs) == n * (n - 1) // 2
    assert float(loss) == pytest.approx(reference, rel=1e-5)
    triplets = [
        (a, p, q)
        for a, p, q in itertools.product(range(n), repeat=3)
        if a != p and points.y[a] == points.y[p] and points.y[a] != points.y[q]
    ]
    loss, terms = metric_loss(z, points, PlaygroundConfig("triplet", margin=0.7))
    assert len(terms) == len(triplets) == 12 * 3 * 8
    assert float(loss) == pytest.approx(sum(max(0.0, d(a, p) - d(a, q) + 0.7) for a, p, q in triplets) / len(triplets), rel=1e-5)


def test_the_loss_is_the_shared_losses_module_on_the_same_distances():
    points = make_points("moons", per_class=5, seed=2)
    z = embed(init_state(0).params, points.x)
    d = torch.cdist(z, z)
    i, j = torch.triu_indices(10, 10, 1)
    loss, _ = metric_loss(z, points, PlaygroundConfig("contrastive", margin=1.3))
    assert float(loss) == pytest.approx(float(contrastive_loss(d[i, j], points.y[i] == points.y[j], 1.3)), rel=1e-5)
    a, p, q = points.triplets
    loss, _ = metric_loss(z, points, PlaygroundConfig("triplet", margin=0.2))
    assert float(loss) == pytest.approx(float(triplet_loss(d[a, p], d[a, q], 0.2)), rel=1e-5)


def test_training_is_deterministic_lowers_the_loss_and_leaves_the_given_state_alone():
    points, cfg = make_points("moons", per_class=15, seed=0), PlaygroundConfig("contrastive", margin=1.0, lr=0.05)
    start = init_state(0)
    before = {k: v.clone() for k, v in start.params.items()}
    trained = train_steps(start, points, cfg, 60)
    assert all(torch.equal(before[k], start.params[k]) for k in before) and start.step == 0 and start.losses == ()
    assert trained.step == 60 and len(trained.losses) == 60
    assert view(trained, points, cfg).loss < 0.5 * trained.losses[0]
    in_two = train_steps(train_steps(start, points, cfg, 25), points, cfg, 35)  # Adam's moments carry over
    assert all(torch.allclose(in_two.params[k], trained.params[k], atol=1e-6) for k in before)


def test_forces_are_minus_the_gradient_and_pull_a_same_class_pair_together():
    x = torch.tensor([[0.0, 0.0], [0.5, 0.0]])
    points = Points(x, torch.tensor([0, 0]))
    state = init_state(0)
    state.params.update(w1=torch.eye(2).repeat(8, 1), b1=torch.zeros(16), w2=torch.zeros(2, 16), b2=torch.zeros(2))
    state.params["w2"][0, 0] = state.params["w2"][1, 1] = 1.0
    now = view(state, points, PlaygroundConfig("contrastive", margin=1.0))
    assert now.forces[0, 0] > 0 > now.forces[1, 0]  # the left point moves right, the right one left
    assert now.active == 1 and now.terms == 1


def test_a_small_margin_drives_the_triplet_loss_to_zero_and_the_unit_circle_cannot_meet_margin_two():
    points = make_points("moons", per_class=15, seed=0)
    reachable = PlaygroundConfig("triplet", margin=0.5, lr=0.1, normalize=True)
    trained = train_steps(init_state(0), points, reachable, 150)
    assert view(trained, points, reachable).loss < 1e-4
    impossible = PlaygroundConfig("triplet", margin=2.0, lr=0.1, normalize=True)
    trained = train_steps(init_state(0), points, impossible, 150)
    z = view(trained, points, impossible).z
    assert torch.allclose(z.norm(dim=1), torch.ones(len(z)), atol=1e-5)
    assert view(trained, points, impossible).loss > 0.1


def test_warp_grid_maps_straight_lines_through_the_net():
    state = init_state(0)
    grid = warp_grid(state.params, lines=5, samples=7)
    assert grid.shape == (10, 7, 2)
    corner = torch.tensor([[-1.2, -1.2]])
    assert torch.allclose(grid[0, 0], embed(state.params, corner)[0])
    assert math.isfinite(float(grid.abs().max()))
