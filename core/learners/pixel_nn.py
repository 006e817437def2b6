"""Nearest neighbour on raw pixels: the untrained baseline every learner must beat."""

from __future__ import annotations

import torch

from core.learners.base import MetaLearner
from core.learners.scoring import nearest_support_logits, pairwise_distance


class PixelNN(MetaLearner):
    """1-NN with squared Euclidean distance between flattened images; no parameters.

    Not `batched`: with nothing to train, a meta-batch only computes the logged loss, one episode at a time.
    """

    name = "pixel_nn"
    family = "baseline"

    def embed(self, x: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        return x.flatten(1)

    def score(self, support_z, support_y, query_z, n_way):
        return nearest_support_logits(pairwise_distance(query_z, support_z), support_y, n_way)

    def explain(self, support_x, support_y, query_x, n_way=None):
        logits = self(support_x, support_y, query_x, n_way)
        return {"logits": logits, "distance": -logits}
