"""Finding the stored tasks nearest a new one, and how well each way of finding them ranks the related ones.

Ways of comparing two tasks (`RETRIEVALS`), each giving a (new, stored) similarity:
- metric: cosine of the DeepSets task embeddings (core.tasks.embedding), trained to bring tasks of a group together;
- parameter: cosine of a fine-tuned head's Gram matrices W^T W;
- centroid: cosine of the mean of the task's class prototypes (the untrained summary DeepSets starts from);
- prototypes: the class prototypes of both tasks matched one-to-one (Hungarian assignment, scipy's
  linear_sum_assignment) to maximise the summed cosine; the similarity is the mean matched cosine. Unlike a
  single vector per task, it keeps the classes apart: a stored task holding a new task's very classes scores
  high even when its other classes differ.
Precision at k: the share of the k most similar stored tasks that are related to the new task (core.tasks.library),
against the share of all stored tasks that are (what random retrieval gets).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from core.evaluation import mean_ci95

RETRIEVALS = ("prototypes", "metric", "parameter", "centroid")


def matching_similarity(new: Sequence[torch.Tensor], stored: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean cosine of optimally matched prototypes: new[i] (n_i, e) and stored[j] (n_j, e), unit rows -> (m, t).

    The mean runs over min(n_i, n_j) matched pairs, so tasks of different n_way compare too.
    """
    cos = (torch.cat(list(new)) @ torch.cat(list(stored)).T).numpy()  # every prototype pair at once: (sum n_i, sum n_j)
    a, b = np.cumsum([0, *(len(p) for p in new)]), np.cumsum([0, *(len(p) for p in stored)])
    out = np.empty((len(new), len(stored)), dtype=np.float32)
    for i in range(len(new)):
        for j in range(len(stored)):
            block = cos[a[i] : a[i + 1], b[j] : b[j + 1]]
            rows, cols = linear_sum_assignment(block, maximize=True)
            out[i, j] = block[rows, cols].mean()
    return torch.from_numpy(out)


def centroid_vectors(prototypes: Sequence[torch.Tensor]) -> torch.Tensor:
    """(t, e): each task's mean prototype (compared by cosine)."""
    return torch.stack([p.mean(0) for p in prototypes])


def top_k(similarity: torch.Tensor, k: int) -> torch.Tensor:
    """(m, k) indices of the k most similar stored tasks of each new task, most similar first; similarity (m, t)."""
    if not 1 <= k <= similarity.shape[1]:
        raise ValueError(f"ask for 1 to {similarity.shape[1]} nearest tasks, the number stored (got {k})")
    return similarity.topk(k, dim=1).indices


def random_neighbours(n_stored: int, n_new: int, k: int, seed: int) -> torch.Tensor:
    """(n_new, k): k distinct stored tasks drawn at random for each new task, seeded: the control's choice."""
    if not 1 <= k <= n_stored:
        raise ValueError(f"ask for 1 to {n_stored} random tasks, the number stored (got {k})")
    rng = np.random.default_rng(seed)
    return torch.as_tensor(np.stack([rng.choice(n_stored, k, replace=False) for _ in range(n_new)]), dtype=torch.int64)


def precision_at(similarity: torch.Tensor, related: torch.Tensor, k: int) -> tuple[float, float]:
    """Mean precision at k over the new tasks and its 95% CI. similarity (m, t), related (m, t) bool."""
    hits = related.gather(1, top_k(similarity, k)).float().mean(1)  # (m,)
    return mean_ci95(hits)


def base_rate(related: torch.Tensor) -> float:
    """The share of stored tasks related to a new task, averaged over new tasks: random retrieval's precision."""
    return related.float().mean().item()


def precision_table(similarity: dict[str, torch.Tensor], related: dict[str, torch.Tensor], ks: Sequence[int]) -> list[dict]:
    """One row per (retrieval, relation): {'retrieval', 'relation', 'base rate', 'P@k': (mean, ci95) for k in ks}."""
    return [
        {"retrieval": kind, "relation": relation, "base rate": base_rate(r), **{f"P@{k}": precision_at(s, r, k) for k in ks}}
        for kind, s in similarity.items()
        for relation, r in related.items()
    ]


def precision_lines(rows: Sequence[dict]) -> list[str]:
    """precision_table's rows as aligned text, in points: 'retrieval relation base P@1 ...'."""
    ks = [key for key in rows[0] if key.startswith("P@")]
    lines = [f"{'retrieval':<11} {'relation':<9} {'random':>6}  " + "  ".join(f"{k:>13}" for k in ks)]
    for row in rows:
        cells = "  ".join(f"{100 * row[k][0]:6.1f} ± {100 * row[k][1]:4.1f}" for k in ks)
        lines.append(f"{row['retrieval']:<11} {row['relation']:<9} {100 * row['base rate']:6.1f}  {cells}")
    return lines
