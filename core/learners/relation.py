"""Relation Networks (Sung et al., 2018): a learned module scores how well a query matches each class."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.learners.base import EmbeddingLearner
from core.learners.scoring import infer_n_way, one_hot


class RelationModule(nn.Module):
    """[class representation, query embedding] (..., 2d) -> relation logit (...).

    The paper's module is two conv blocks (conv, batchnorm, ReLU, pool), FC-8, FC-1 on concatenated
    feature maps. Conv-4 on 28x28 ends at 1x1, where a conv is a linear layer, so:
    Linear(2d, d), BatchNorm, ReLU, Linear(d, hidden), ReLU, Linear(hidden, 1).
    The batchnorm matters: without it the module settles on a constant score of 1/n_way (the best
    constant under MSE) and stays there (seen on the toy data of the tests).
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * dim, dim), nn.BatchNorm1d(dim), nn.ReLU(), nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )  # fmt: skip

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.net(pairs.flatten(0, -2)).view(pairs.shape[:-1])  # batchnorm wants (n, features)


class RelationNet(EmbeddingLearner):
    """relation(q, c) = sigmoid(g([Σ_{i: y_i = c} f(x_i), f(q)])) in [0, 1]; logits are the pre-sigmoid scores.

    Trained as in the paper by regressing the relation scores onto one-hot targets (MSE), not by cross-entropy.
    """

    name = "relation"
    settings = ("backbone", "relation_hidden")

    def __init__(self, config, in_channels: int, image_size: int):
        super().__init__(config, in_channels, image_size)
        self.relation_module = RelationModule(self.embed_dim, config.relation_hidden)

    def score(self, support_z, support_y, query_z, n_way):
        classes = support_z.new_zeros(n_way, support_z.shape[-1]).index_add_(0, support_y, support_z)  # (n_way, d): sums, as in the paper
        q, d = query_z.shape
        pairs = torch.cat([classes.unsqueeze(0).expand(q, n_way, d), query_z.unsqueeze(1).expand(q, n_way, d)], dim=-1)  # (q, n_way, 2d)
        return self.relation_module(pairs)

    def episode_loss(self, support_x, support_y, query_x, query_y, n_way=None):
        """MSE between relation scores (q, n_way) and one-hot targets -> (loss, logits)."""
        n_way = infer_n_way(support_y, n_way)
        logits = self(support_x, support_y, query_x, n_way)
        return F.mse_loss(torch.sigmoid(logits), one_hot(query_y, n_way, logits.dtype)), logits

    def explain(self, support_x, support_y, query_x, n_way=None):
        """'logits' (q, n_way) pre-sigmoid scores; 'relation' (q, n_way) = sigmoid(logits) in [0, 1]."""
        logits = self(support_x, support_y, query_x, n_way)
        return {"logits": logits, "relation": torch.sigmoid(logits)}
