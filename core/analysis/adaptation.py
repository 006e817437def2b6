"""The inner loop of an optimization-based learner on one episode: its trace, and the space before and after it."""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call

from core.analysis.embeddings import NO_PREDICTION, PointSet
from core.episodes import Episode
from core.learners import MetaLearner
from core.learners.functional import HEAD_KEYS, FastWeightLearner, Task, Weights
from core.learners.scoring import prototypes


def adapts(learner: MetaLearner) -> bool:
    """True for learners that adapt weights per task in an inner loop (MAML, FOMAML, Reptile, ANIL, ...)."""
    return isinstance(learner, FastWeightLearner)


@torch.no_grad()
def points_at(learner: FastWeightLearner, task: Task, weights: Weights, ep: Episode) -> PointSet:
    """The episode's support and query features under the fast weights `weights`, and the predictions they give.

    The features are what the head reads: the backbone at the adapted weights where the backbone adapts
    (MAML), the fixed meta-learned features where only the head does (ANIL)."""
    backbone = {k: v for k, v in weights.items() if k not in HEAD_KEYS}

    def features(x: torch.Tensor) -> torch.Tensor:  # support and query apart: BatchNorm sees each batch as in training
        return functional_call(learner.backbone, backbone, (x,)) if backbone else learner.backbone(x)

    s_z, q_z = features(ep.support_x).cpu(), features(ep.query_x).cpu()
    ids = torch.tensor(ep.class_ids)
    n_s, n_q = len(ep.support_y), len(ep.query_y)
    predicted = ids[task.logits(weights, task.query).argmax(1).cpu()]
    return PointSet(
        z=torch.cat([s_z, q_z]).numpy(),
        class_ids=ids[torch.cat([ep.support_y, ep.query_y]).cpu()].numpy(),
        image_idx=torch.cat([ep.support_idx, ep.query_idx]).numpy(),
        group=np.array(["support"] * n_s + ["query"] * n_q),
        predicted=np.concatenate([np.full(n_s, NO_PREDICTION), predicted.numpy()]),
        prototypes=prototypes(s_z, ep.support_y.cpu(), ep.n_way).numpy(),
        prototype_class_ids=ids.numpy(),
    )


def adaptation(learner: MetaLearner, ep: Episode) -> tuple[list[dict[str, float]], PointSet, PointSet]:
    """(loss and accuracy on query and support after each inner step, the space before adapting, after adapting).

    ValueError for a learner without an inner loop (see adapts())."""
    if not isinstance(learner, FastWeightLearner):
        raise ValueError(f"{type(learner).__name__} has no inner loop")
    trace = learner.adapt_trace(ep.support_x, ep.support_y, ep.query_x, ep.query_y, ep.n_way)
    task = learner.task(ep.support_x, ep.query_x, ep.n_way)
    steps = list(learner.adapt(task, ep.support_y, track=False))
    return trace, points_at(learner, task, steps[0], ep), points_at(learner, task, steps[-1], ep)
