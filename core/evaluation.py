"""Accuracy over many test episodes with its 95% CI, per-class precision / recall / F1, confusion."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

from core.config import EpisodeShape
from core.episodes import ClassPool, EpisodeSampler, to_float
from core.learners import MetaLearner


@dataclass(frozen=True)
class EvalResult:
    """Figures over `episodes` test episodes. confusion[i][j]: queries of pool class i predicted as j."""

    accuracy: float  # mean episode accuracy, 0..1
    ci95: float  # 1.96 * std / sqrt(episodes)
    episodes: int
    n_way: int
    k_shot: int
    q_query: int
    episode_accuracy: list[float]
    class_names: list[str]
    confusion: list[list[int]]
    precision: list[float]
    recall: list[float]
    f1: list[float]
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return f"accuracy: {100 * self.accuracy:.2f} ± {100 * self.ci95:.2f}"


def mean_ci95(values: torch.Tensor) -> tuple[float, float]:
    """Mean and 95% confidence half-width (normal approximation) of (n,) values."""
    n = values.numel()
    std = values.std(unbiased=True).item() if n > 1 else 0.0
    return values.mean().item(), 1.96 * std / math.sqrt(n)


@torch.no_grad()
def predict_episodes(learner: MetaLearner, sampler: EpisodeSampler, episodes: int, per_episode: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions for `episodes` episodes, in pool classes.

    Returns (true, predicted), each (episodes, n_way*q_query) of pool class indices. Learners whose
    logits depend only on embeddings embed each pool image once and score episodes by indexing,
    unless `per_episode` asks for a full forward pass per episode (the reference it must equal).
    """
    shape, pool = sampler.shape, sampler.pool
    draws = [sampler.draw() for _ in range(episodes)]
    q_labels = torch.arange(shape.n_way).repeat_interleave(shape.q_query)
    s_labels = torch.arange(shape.n_way).repeat_interleave(shape.k_shot).to(pool.device)
    true, predicted = [], []
    z = embed_pool(learner, pool) if learner.embedding_only and not per_episode else None
    for classes, positions in draws:
        if z is not None:
            rows = pool.rows(classes, positions).to(pool.device)
            support_z, query_z = rows[:, : shape.k_shot].reshape(-1), rows[:, shape.k_shot :].reshape(-1)
            logits = learner.score(z[support_z], s_labels, z[query_z], shape.n_way)
        else:
            ep = pool.episode(classes, positions, shape.k_shot)
            logits = learner(ep.support_x, ep.support_y, ep.query_x, shape.n_way)
        predicted.append(classes[logits.argmax(1).cpu()])
        true.append(classes[q_labels])
    return torch.stack(true), torch.stack(predicted)


@torch.no_grad()
def embed_pool(learner: MetaLearner, pool: ClassPool, batch: int = 1024) -> torch.Tensor:
    """Embeddings (n, d) of every pool image, in eval mode."""
    was_training = learner.training
    learner.eval()
    try:
        return torch.cat([learner.embed(to_float(pool.images[i : i + batch])) for i in range(0, pool.images.shape[0], batch)])
    finally:
        learner.train(was_training)


def evaluate(
    learner: MetaLearner, pool: ClassPool, shape: EpisodeShape, episodes: int = 600, seed: int = 0, per_episode: bool = False
) -> EvalResult:
    """Evaluate on `episodes` seeded episodes of `shape` drawn from `pool` (the same seed, the same episodes).

    per_episode=True runs every episode through the learner's forward, even when embedding each
    pool image once would do: slower, and the reference the fast path is tested against.
    """
    start = time.perf_counter()
    sampler = EpisodeSampler(pool, shape.n_way, shape.k_shot, shape.q_query, seed)
    was_training = learner.training
    learner.eval()
    try:
        true, predicted = predict_episodes(learner, sampler, episodes, per_episode)
    finally:
        learner.train(was_training)
    accuracy, ci = mean_ci95((true == predicted).float().mean(1))
    n = pool.n_classes
    confusion = torch.bincount(true.flatten() * n + predicted.flatten(), minlength=n * n).reshape(n, n)
    precision, recall, f1 = per_class_scores(confusion)
    names = [_pool_class_name(pool, j) for j in range(n)]
    return EvalResult(
        accuracy=accuracy,
        ci95=ci,
        episodes=episodes,
        n_way=shape.n_way,
        k_shot=shape.k_shot,
        q_query=shape.q_query,
        episode_accuracy=(true == predicted).float().mean(1).tolist(),
        class_names=names,
        confusion=confusion.tolist(),
        precision=precision.tolist(),
        recall=recall.tolist(),
        f1=f1.tolist(),
        seconds=time.perf_counter() - start,
    )


def per_class_scores(confusion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Precision, recall, F1 per class from a (c, c) confusion matrix (rows true, columns predicted); 0 where undefined."""
    confusion = confusion.double()
    hits = confusion.diagonal()
    precision = torch.nan_to_num(hits / confusion.sum(0))
    recall = torch.nan_to_num(hits / confusion.sum(1))
    f1 = torch.nan_to_num(2 * precision * recall / (precision + recall))
    return precision, recall, f1


def _pool_class_name(pool: ClassPool, j: int) -> str:
    name = pool.image_set.class_names[pool.class_ids[j]]
    return name if pool.rotations[j] == 0 else f"{name} (rot {90 * pool.rotations[j]})"
