"""A 2D metric-learning playground: points in the plane, a tiny embedding net, pair or triplet loss.

Small enough to train a step in about a millisecond on a CPU, so a page can animate it. The
whole state is plain tensors (weights and Adam moments) so it can live in a user's session
and be copied, never a module shared between users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import torch

from core.config import ConfigError
from core.learners.losses import contrastive_loss, triplet_loss
from core.learners.scoring import pairwise_distance

POINT_KINDS = ("moons", "rings", "spirals")
LOSSES = ("contrastive", "triplet")
ADAM_BETAS = (0.9, 0.999)


@dataclass(frozen=True)
class PlaygroundConfig:
    """What the student sets: the loss, its margin m, the learning rate; embeddings on the unit circle or not."""

    loss: str = "contrastive"
    margin: float = 1.0
    lr: float = 0.03
    normalize: bool = False

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss '{self.loss}'; use one of: {', '.join(LOSSES)}")
        if not 0 < self.margin <= 10:
            raise ConfigError(f"use a loss margin above 0 and at most 10 (got {self.margin})", "margin")
        if not 0 < self.lr <= 1:
            raise ConfigError(f"use a learning rate above 0 and at most 1 (got {self.lr})", "lr")


@dataclass(frozen=True)
class Points:
    """x: float (n, 2) in about [-1, 1]; y: int64 (n,) class of each point."""

    x: torch.Tensor
    y: torch.Tensor

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1

    @cached_property
    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every pair i < j: two (p,) index tensors."""
        i, j = torch.triu_indices(len(self.y), len(self.y), offset=1)
        return i, j

    @cached_property
    def triplets(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every (anchor, positive, negative) index triple: three (t,) tensors."""
        same = self.y.unsqueeze(0) == self.y.unsqueeze(1)
        positive = same & ~torch.eye(len(self.y), dtype=torch.bool)
        return (positive.unsqueeze(2) & ~same.unsqueeze(1)).nonzero(as_tuple=True)


def make_points(kind: str = "moons", per_class: int = 30, seed: int = 0, noise: float = 0.08) -> Points:
    """Seeded points of a few classes that no straight line separates: 2 moons, 3 rings or 3 spirals."""
    if kind not in POINT_KINDS:
        raise ConfigError(f"unknown point set '{kind}'; use one of: {', '.join(POINT_KINDS)}")
    if not 2 <= per_class <= 500:
        raise ConfigError(f"use 2 to 500 points per class (got {per_class})", "per_class")
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(3, per_class, generator=g)  # position along each class's curve, in [0, 1)
    if kind == "moons":
        angle = math.pi * t[:2]
        x = torch.stack([torch.cos(angle), torch.sin(angle)], -1)  # (2, per_class, 2)
        x[1] = torch.stack([1 - x[1, :, 0], 0.5 - x[1, :, 1]], -1)
        x = (x - torch.tensor([0.5, 0.25])) / 1.2
    elif kind == "rings":
        radius = torch.tensor([0.25, 0.6, 0.95]).unsqueeze(1)
        angle = 2 * math.pi * t
        x = radius.unsqueeze(-1) * torch.stack([torch.cos(angle), torch.sin(angle)], -1)
    else:
        arm = torch.arange(3).unsqueeze(1) * (2 * math.pi / 3)
        angle = arm + 1.6 * math.pi * t
        x = (0.15 + 0.8 * t).unsqueeze(-1) * torch.stack([torch.cos(angle), torch.sin(angle)], -1)
    x = x + noise * torch.randn(x.shape, generator=g)
    labels = torch.arange(x.shape[0]).repeat_interleave(per_class)
    return Points(x.reshape(-1, 2), labels)


@dataclass(frozen=True)
class PlaygroundState:
    """The tiny net 2 -> hidden -> 2 (tanh) with its Adam moments, and the loss after every step so far."""

    params: dict[str, torch.Tensor]
    moment1: dict[str, torch.Tensor]
    moment2: dict[str, torch.Tensor]
    step: int = 0
    losses: tuple[float, ...] = ()


def init_state(seed: int = 0, hidden: int = 16) -> PlaygroundState:
    """A freshly initialised net (Glorot-uniform weights, zero biases), the same for the same seed."""
    g = torch.Generator().manual_seed(seed)

    def glorot(rows: int, cols: int) -> torch.Tensor:
        bound = math.sqrt(6 / (rows + cols))
        return (2 * torch.rand(rows, cols, generator=g) - 1) * bound

    params = {"w1": glorot(hidden, 2), "b1": torch.zeros(hidden), "w2": glorot(2, hidden), "b2": torch.zeros(2)}
    zeros = {k: torch.zeros_like(v) for k, v in params.items()}
    return PlaygroundState(params, zeros, {k: v.clone() for k, v in zeros.items()})


def embed(params: dict[str, torch.Tensor], x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Points (n, 2) -> embeddings (n, 2); on the unit circle when `normalize`."""
    z = torch.tanh(x @ params["w1"].T + params["b1"]) @ params["w2"].T + params["b2"]
    return torch.nn.functional.normalize(z, dim=-1) if normalize else z


def metric_loss(z: torch.Tensor, points: Points, config: PlaygroundConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss over every pair (contrastive) or every triplet (triplet) of the points, with Euclidean d.

    z: (n, 2) embeddings of points.x -> (scalar loss, per-term values (t,) whose mean it is).
    """
    d = pairwise_distance(z, z, "l2")  # (n, n)
    if config.loss == "contrastive":
        i, j = points.pairs
        pair_d, same = d[i, j], points.y[i] == points.y[j]
        terms = torch.where(same, pair_d, torch.clamp(config.margin - pair_d, min=0))
        return contrastive_loss(pair_d, same, config.margin), terms
    anchor, positive, negative = points.triplets
    d_ap, d_an = d[anchor, positive], d[anchor, negative]
    return triplet_loss(d_ap, d_an, config.margin), torch.clamp(d_ap - d_an + config.margin, min=0)


def train_steps(state: PlaygroundState, points: Points, config: PlaygroundConfig, steps: int = 1) -> PlaygroundState:
    """`steps` full-batch Adam steps on the loss; returns a new state (the given one is not changed)."""
    params = {k: v.clone() for k, v in state.params.items()}
    m1 = {k: v.clone() for k, v in state.moment1.items()}
    m2 = {k: v.clone() for k, v in state.moment2.items()}
    losses = list(state.losses)
    b1, b2 = ADAM_BETAS
    for t in range(state.step + 1, state.step + steps + 1):
        leaves = {k: v.requires_grad_(True) for k, v in params.items()}
        loss, _ = metric_loss(embed(leaves, points.x, config.normalize), points, config)
        grads = torch.autograd.grad(loss, list(leaves.values()))
        with torch.no_grad():
            for (k, p), g in zip(leaves.items(), grads, strict=True):
                m1[k].mul_(b1).add_(g, alpha=1 - b1)
                m2[k].mul_(b2).addcmul_(g, g, value=1 - b2)
                step = config.lr * m1[k] / (1 - b1**t) / ((m2[k] / (1 - b2**t)).sqrt() + 1e-8)
                params[k] = (p - step).detach()
        losses.append(loss.item())
    return replace(state, params=params, moment1=m1, moment2=m2, step=state.step + steps, losses=tuple(losses))


@dataclass(frozen=True)
class PlaygroundView:
    """What the page draws at one moment. z, forces: float (n, 2); forces = -dL/dz, where the loss moves each point."""

    z: torch.Tensor
    forces: torch.Tensor
    loss: float
    active: int
    terms: int


def view(state: PlaygroundState, points: Points, config: PlaygroundConfig) -> PlaygroundView:
    """The embedded points, the pull and push on each, and the loss now (not the last step's)."""
    z = embed(state.params, points.x, config.normalize).detach().requires_grad_(True)
    loss, terms = metric_loss(z, points, config)
    (grad,) = torch.autograd.grad(loss, z)
    # contrastive positive pairs never vanish exactly: count a term as active above a hair
    active = int((terms > 1e-6).sum())
    return PlaygroundView(z.detach(), -grad * len(points.y), loss.item(), active, len(terms))  # per-point scale, not per-mean


def warp_grid(
    params: dict[str, torch.Tensor], lines: int = 9, samples: int = 41, extent: float = 1.2, normalize: bool = False
) -> torch.Tensor:
    """How the net bends the input plane: a square grid's lines mapped into the embedding, (2*lines, samples, 2)."""
    ticks = torch.linspace(-extent, extent, lines)
    along = torch.linspace(-extent, extent, samples)
    horizontal = torch.stack([along.expand(lines, -1), ticks.unsqueeze(1).expand(-1, samples)], -1)
    grid = torch.cat([horizontal, horizontal.flip(-1)])  # (2*lines, samples, 2)
    with torch.no_grad():
        return embed(params, grid.reshape(-1, 2), normalize).reshape(grid.shape)
