"""Accuracy over many test episodes with its 95% CI, per-class precision / recall / F1, confusion."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

from core.config import EpisodeShape
from core.episodes import ClassPool, EpisodeSampler
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
def predict_episodes(
    learner: MetaLearner, sampler: EpisodeSampler, episodes: int, per_episode: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions for `episodes` episodes, in pool classes.

    Returns (true, predicted), each (episodes, n_way*q_query) of pool class indices. Learners whose
    logits depend only on embeddings embed each pool image once and score episodes by indexing,
    unless `per_episode` asks for a full forward pass per episode (the reference it must equal).
    """
    shape, pool = sampler.shape, sampler.pool
    draws = [sampler.draw() for _ in range(episodes)]
    classes = torch.stack([c for c, _ in draws])  # (episodes, n_way)
    if learner.embedding_only and not per_episode:
        logits = score_by_index(learner, embed_pool(learner, pool), torch.stack([pool.rows(c, p) for c, p in draws]), shape)
    else:
        episodes_ = (pool.episode(c, p, shape.k_shot) for c, p in draws)
        logits = torch.stack([learner(ep.support_x, ep.support_y, ep.query_x, shape.n_way) for ep in episodes_])
    true = classes[:, torch.arange(shape.n_way).repeat_interleave(shape.q_query)]
    return true, classes.gather(1, logits.argmax(-1).cpu())


def score_by_index(learner: MetaLearner, z: torch.Tensor, rows: torch.Tensor, shape: EpisodeShape, chunk: int = 1000) -> torch.Tensor:
    """Logits (episodes, n_way*q_query, n_way) from pool embeddings z (n, d) and episode rows (episodes, n_way, k+q).

    learner.score is vmapped over episodes (600 episodes in one call instead of 600 calls); a score
    that vmap cannot batch (data-dependent control flow) is called one episode at a time instead.
    """
    rows = rows.to(z.device)
    support, query = rows[..., : shape.k_shot].flatten(1), rows[..., shape.k_shot :].flatten(1)  # (episodes, n_way*k), (episodes, n_way*q)
    labels = torch.arange(shape.n_way, device=z.device).repeat_interleave(shape.k_shot)
    try:
        batched = torch.vmap(learner.score, in_dims=(0, None, 0, None))
        return torch.cat(
            [batched(z[support[i : i + chunk]], labels, z[query[i : i + chunk]], shape.n_way) for i in range(0, len(rows), chunk)]
        )
    except (RuntimeError, NotImplementedError, ValueError):  # what vmap raises for an operation it cannot batch
        return torch.stack([learner.score(z[s], labels, z[q], shape.n_way) for s, q in zip(support, query, strict=True)])


@torch.no_grad()
def embed_pool(learner: MetaLearner, pool: ClassPool, batch: int = 128) -> torch.Tensor:
    """Embeddings (n, d) of every pool image, in eval mode.

    Batches of 128: Conv-4's first activations then fit in cache; 1,024 took twice the CPU time (measured).
    """
    was_training = learner.training
    learner.eval()
    try:
        return torch.cat([learner.embed(pool.floats(slice(i, i + batch))) for i in range(0, pool.images.shape[0], batch)])
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
