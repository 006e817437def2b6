"""Triplet network (Hoffer & Ailon, 2015; Schroff et al., 2015): anchors closer to positives than negatives by a margin."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.learners.base import EmbeddingLearner
from core.learners.losses import triplet_loss
from core.learners.scoring import embed_episode, infer_n_way, pairwise_distance, prototypes
from core.models.ghost import call_backbone


class TripletNet(EmbeddingLearner):
    """Embeddings on the unit sphere; a query takes the class of its nearest class mean (Euclidean distance);
    logits = -distance to each mean.

    Trained with L = max(0, d(a,p) − d(a,n) + m) on triplets mined in the episode (see `mine_triplets`).
    Unit-length embeddings give the margin a fixed scale (distances lie in [0, 2]); without them the
    loss could be met by scaling every distance up.
    """

    name = "triplet"
    settings = ("backbone", "margin")

    def embed(self, x: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        return F.normalize(call_backbone(self.backbone, x, episodes), dim=-1)

    def distances(self, support_z: torch.Tensor, support_y: torch.Tensor, query_z: torch.Tensor, n_way: int) -> torch.Tensor:
        """(..., q, n_way) Euclidean distance from each query to each class mean."""
        return pairwise_distance(query_z, prototypes(support_z, support_y, n_way), "l2")

    def score(self, support_z, support_y, query_z, n_way):
        return -self.distances(support_z, support_y, query_z, n_way)

    def embedded_loss(self, support_z, support_y, query_z, query_y, n_way):
        """Triplet loss over each episode's support and query images -> (loss (...), logits (..., q, n_way))."""
        d_ap, d_an = mine_triplets(torch.cat([support_z, query_z], -2), torch.cat([support_y, query_y], -1))
        return triplet_loss(d_ap, d_an, self.config.margin), self.score(support_z, support_y, query_z, n_way)

    def explain(self, support_x, support_y, query_x, n_way=None):
        """'logits' (q, n_way) = -'distance'; 'distance' (q, n_way): to each class mean; 'prototypes' (n_way, d)."""
        n_way = infer_n_way(support_y, n_way)
        support_z, query_z = embed_episode(self.embed, support_x, query_x)
        distance = self.distances(support_z, support_y, query_z, n_way)
        return {"logits": -distance, "distance": distance, "prototypes": prototypes(support_z, support_y, n_way)}


def mine_triplets(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-hard mining: embeddings (..., n, d), labels (..., n) -> (d(a,p), d(a,n)), each (..., n), one triplet per anchor.

    Each image is an anchor with its farthest same-class image and its nearest other-class image
    (Hermans et al., 2017). Chosen over batch-all: a 20-way episode of 6 images a class holds about
    68,000 valid triplets, most of them soon satisfied, so their plain mean is mostly zeros and its
    gradient fades as training goes on; the hardest triplet of each anchor stays informative, and
    needs only the (n, n) distance matrix. An anchor alone in its class gets d(a,p) = -inf: no loss.
    """
    d = pairwise_distance(z, z, "l2")  # (..., n, n)
    same = y.unsqueeze(-2) == y.unsqueeze(-1)
    itself = torch.eye(y.shape[-1], dtype=torch.bool, device=z.device)
    d_ap = d.masked_fill(~same | itself, float("-inf")).amax(-1)
    d_an = d.masked_fill(same, float("inf")).amin(-1)
    return d_ap, d_an
