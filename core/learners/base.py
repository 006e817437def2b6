"""The one interface every meta-learner has: support set and queries in, logits out."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from core.learners.scoring import infer_n_way
from core.models.backbones import make_backbone

if TYPE_CHECKING:
    from core.config import LearnerConfig


class MetaLearner(nn.Module):
    """Base of all learners. Stateless between calls: nothing about a task is stored.

    forward(support_x (s, c, h, w), support_y (s,), query_x (q, c, h, w)) -> logits (q, n_way)
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = "metric"  # metric | optimization | model | baseline
    # the LearnerConfig fields this learner reads (besides method): what a form offers for it
    settings: ClassVar[tuple[str, ...]] = ()
    # True when logits depend only on per-image embeddings: evaluation then embeds each test
    # image once and scores many episodes from those embeddings.
    embedding_only: ClassVar[bool] = True

    def __init__(self, config: LearnerConfig, in_channels: int, image_size: int):
        super().__init__()
        self.config = config
        self.in_channels = in_channels
        self.image_size = image_size

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images (n, c, h, w) -> embeddings (n, d)."""
        raise NotImplementedError

    def score(self, support_z: torch.Tensor, support_y: torch.Tensor, query_z: torch.Tensor, n_way: int) -> torch.Tensor:
        """Embeddings (s, d), labels (s,), query embeddings (q, d) -> logits (q, n_way)."""
        raise NotImplementedError

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, n_way: int | None = None) -> torch.Tensor:
        n_way = infer_n_way(support_y, n_way)
        # one pass over support and query: half the kernel launches of two calls
        z = self.embed(torch.cat([support_x, query_x]))
        # scores in (at least) float32 under bf16 autocast: ||a||^2 - 2ab + ||b||^2 cancels, and bf16 keeps 8 bits
        z = z.float() if z.dtype in (torch.bfloat16, torch.float16) else z
        with torch.autocast(z.device.type, enabled=False):
            return self.score(z[: support_x.shape[0]], support_y, z[support_x.shape[0] :], n_way)

    def episode_loss(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, query_y: torch.Tensor, n_way: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training objective on one episode -> (scalar loss, logits (q, n_way)). Cross-entropy by default."""
        logits = self(support_x, support_y, query_x, n_way)
        return F.cross_entropy(logits, query_y), logits

    def explain(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, n_way: int | None = None
    ) -> dict[str, torch.Tensor]:
        """What the learner computed on an episode, for display: at least 'logits' (q, n_way),
        and where it has them 'distance' (q, n_way) or 'similarity', 'attention' (q, s), 'relation' (q, n_way)."""
        return {"logits": self(support_x, support_y, query_x, n_way)}


class EmbeddingLearner(MetaLearner):
    """A learner built on a backbone: embed() runs it, subclasses define score()."""

    settings = ("backbone",)

    def __init__(self, config: LearnerConfig, in_channels: int, image_size: int):
        super().__init__(config, in_channels, image_size)
        self.backbone = make_backbone(config.backbone, in_channels, image_size)
        self.embed_dim = self.backbone.out_dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)
