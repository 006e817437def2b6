"""Prototypical Networks (Snell et al., 2017): classify by distance to class means."""

from __future__ import annotations

import torch
from torch import nn

from core.learners.base import EmbeddingLearner
from core.learners.scoring import infer_n_way, pairwise_distance, prototypes


class ProtoNet(EmbeddingLearner):
    """logits = -d(query, prototype); d is squared Euclidean or cosine distance (scaled)."""

    name = "protonet"
    settings = ("backbone", "distance")

    def __init__(self, config, in_channels: int, image_size: int):
        super().__init__(config, in_channels, image_size)
        # cosine distances lie in [0, 2]: a learned scale lets the softmax become confident
        self.log_scale = nn.Parameter(torch.tensor(2.3)) if config.distance == "cosine" else None

    def distances(self, support_z: torch.Tensor, support_y: torch.Tensor, query_z: torch.Tensor, n_way: int) -> torch.Tensor:
        """(q, n_way) distance from each query to each prototype."""
        return pairwise_distance(query_z, prototypes(support_z, support_y, n_way), self.config.distance)

    def score(self, support_z, support_y, query_z, n_way):
        d = self.distances(support_z, support_y, query_z, n_way)
        return -d * self.log_scale.exp() if self.log_scale is not None else -d

    def explain(self, support_x, support_y, query_x, n_way=None):
        n_way = infer_n_way(support_y, n_way)
        z = self.embed(torch.cat([support_x, query_x]))
        s_z, q_z = z[: support_x.shape[0]], z[support_x.shape[0] :]
        return {
            "logits": self.score(s_z, support_y, q_z, n_way),
            "distance": self.distances(s_z, support_y, q_z, n_way),
            "prototypes": prototypes(s_z, support_y, n_way),
        }
