"""Relation Networks (Sung et al., 2018): a learned module scores how well a query matches each class."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.learners.base import EmbeddingLearner
from core.learners.scoring import class_sums, one_hot
from core.models.ghost import ghost_batch_norm


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

    def forward(self, pairs: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        """Pairs (..., 2d) -> (...); with episodes=E the leading dim is E episodes, each batch-normalised on its own."""
        x = pairs.flatten(0, -2)  # batchnorm wants (n, features)
        for layer in self.net:
            x = ghost_batch_norm(layer, x, episodes) if isinstance(layer, nn.BatchNorm1d) else layer(x)
        return x.view(pairs.shape[:-1])


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
        """(..., s, d), (..., s), (..., q, d) -> (..., q, n_way); one leading dim E: E episodes, each its own batch norm."""
        classes = class_sums(support_z, support_y, n_way)  # (..., n_way, d): sums, as in the paper
        *lead, q, d = query_z.shape
        shape = (*lead, q, n_way, d)
        pairs = torch.cat([classes.unsqueeze(-3).expand(shape), query_z.unsqueeze(-2).expand(shape)], dim=-1)  # (..., q, n_way, 2d)
        return self.relation_module(pairs, math.prod(lead))

    def embedded_loss(self, support_z, support_y, query_z, query_y, n_way):
        """MSE between relation scores (..., q, n_way) and one-hot targets -> (loss (...), logits)."""
        logits = self.score(support_z, support_y, query_z, n_way)
        target = one_hot(query_y, n_way, logits.dtype)
        if logits.dim() == 2:
            return F.mse_loss(torch.sigmoid(logits), target), logits
        return F.mse_loss(torch.sigmoid(logits), target, reduction="none").flatten(-2).mean(-1), logits

    def explain(self, support_x, support_y, query_x, n_way=None):
        """'logits' (q, n_way) pre-sigmoid scores; 'relation' (q, n_way) = sigmoid(logits) in [0, 1]."""
        logits = self(support_x, support_y, query_x, n_way)
        return {"logits": logits, "relation": torch.sigmoid(logits)}
