"""Siamese network (Koch et al., 2015 / Hadsell et al., 2006) trained with the contrastive loss on pairs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.learners.base import EmbeddingLearner
from core.learners.losses import contrastive_loss
from core.learners.scoring import embed_episode, infer_n_way, nearest_support_logits, pairwise_distance
from core.models.ghost import call_backbone


class SiameseNet(EmbeddingLearner):
    """Embeddings on the unit sphere; d = Euclidean (not squared) distance, in [0, 2]; a query takes the
    class of its nearest support image (logits = -distance to each class's nearest support image).

    Trained with L = y·d + (1 − y)·max(0, m − d) on the episode's support–query and support–support pairs.
    Unit-length embeddings give the margin a fixed scale: 2 is the largest possible distance, and
    without the normalisation the loss could be lowered by blowing up every distance.
    """

    name = "siamese"
    settings = ("backbone", "margin")

    def embed(self, x: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        return F.normalize(call_backbone(self.backbone, x, episodes), dim=-1)

    def score(self, support_z, support_y, query_z, n_way):
        return nearest_support_logits(pairwise_distance(query_z, support_z, "l2"), support_y, n_way)

    def embedded_loss(self, support_z, support_y, query_z, query_y, n_way):
        """Balanced contrastive loss over each episode's pairs -> (loss (...), logits (..., q, n_way))."""
        d, same = episode_pairs(support_z, support_y, query_z, query_y)
        # An N-way episode has about N-1 negative pairs per positive one; a plain mean would mostly teach
        # "push apart". Averaging positives and negatives separately weighs both halves of the loss equally.
        # Masked means, not d[same]: boolean indexing reads the count back to the host (a GPU sync per step).
        y = same.to(d.dtype)
        per_pair = contrastive_loss(d, y, self.config.margin, reduce=False)
        pulled = (per_pair * y).sum(-1) / y.sum(-1).clamp_min(1)
        pushed = (per_pair * (1 - y)).sum(-1) / (1 - y).sum(-1).clamp_min(1)
        return pulled + pushed, self.score(support_z, support_y, query_z, n_way)

    def explain(self, support_x, support_y, query_x, n_way=None):
        """'logits' (q, n_way) = -'distance'; 'distance' (q, n_way): to each class's nearest support image;
        'pair_distance' (q, s): query to every support image."""
        n_way = infer_n_way(support_y, n_way)
        support_z, query_z = embed_episode(self.embed, support_x, query_x)
        pair_distance = pairwise_distance(query_z, support_z, "l2")
        logits = nearest_support_logits(pair_distance, support_y, n_way)
        return {"logits": logits, "distance": -logits, "pair_distance": pair_distance}


def episode_pairs(
    support_z: torch.Tensor, support_y: torch.Tensor, query_z: torch.Tensor, query_y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every support–query pair and every support–support pair (i < j) of an episode (of each, with leading episode dims).

    (..., s, d), (..., s), (..., q, d), (..., q) -> (distance (..., p), same class (..., p) bool), with
    p = q·s + s·(s−1)/2 and Euclidean distance.
    """
    s = support_z.shape[-2]
    i, j = torch.triu_indices(s, s, offset=1, device=support_z.device)
    d_qs = pairwise_distance(query_z, support_z, "l2")  # (..., q, s)
    d_ss = pairwise_distance(support_z, support_z, "l2")[..., i, j]
    same_qs = query_y.unsqueeze(-1) == support_y.unsqueeze(-2)
    same_ss = support_y[..., i] == support_y[..., j]
    return torch.cat([d_qs.flatten(-2), d_ss], -1), torch.cat([same_qs.flatten(-2), same_ss], -1)
