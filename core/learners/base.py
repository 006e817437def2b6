"""The one interface every meta-learner has: support set and queries in, logits out."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from core.learners.scoring import episode_cross_entropy, infer_n_way
from core.models.backbones import make_backbone
from core.models.ghost import call_backbone

if TYPE_CHECKING:
    from core.config import LearnerConfig


class MetaLearner(nn.Module):
    """Base of all learners. Stateless between calls: nothing about a task is stored.

    forward(support_x (s, c, h, w), support_y (s,), query_x (q, c, h, w)) -> logits (q, n_way)

    Training calls episode_loss on one episode, or episode_loss_batched on E stacked episodes:
    the same losses, and where `batched` is True in one forward pass (each episode's own batch-norm
    statistics; see core.models.ghost). Elsewhere episode_loss_batched runs the episodes one by one.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = "metric"  # metric | optimization | model | baseline
    # the LearnerConfig fields this learner reads (besides method): what a form offers for it
    settings: ClassVar[tuple[str, ...]] = ()
    # True when logits depend only on per-image embeddings: evaluation then embeds each test
    # image once and scores many episodes from those embeddings.
    embedding_only: ClassVar[bool] = True
    # True when episode_loss_batched runs E episodes through one forward pass, False when it loops
    batched: ClassVar[bool] = False

    def __init__(self, config: LearnerConfig, in_channels: int, image_size: int):
        super().__init__()
        self.config = config
        self.in_channels = in_channels
        self.image_size = image_size

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def embed(self, x: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        """Images (n, c, h, w) -> embeddings (n, d); with episodes=E, x is E equal episodes back to back,
        each batch-normalised on its own statistics."""
        raise NotImplementedError

    def score(self, support_z: torch.Tensor, support_y: torch.Tensor, query_z: torch.Tensor, n_way: int) -> torch.Tensor:
        """Embeddings (s, d), labels (s,), query embeddings (q, d) -> logits (q, n_way)."""
        raise NotImplementedError

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, n_way: int | None = None) -> torch.Tensor:
        n_way = infer_n_way(support_y, n_way)
        support_z, query_z = self.embed_float(support_x, query_x)
        with torch.autocast(support_z.device.type, enabled=False):
            return self.score(support_z, support_y, query_z, n_way)

    def embed_float(self, support_x: torch.Tensor, query_x: torch.Tensor, episodes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Support (s, ...) and queries (q, ...) in one pass -> float32 embeddings (s, d), (q, d).

        episodes=E: (E, s, ...) and (E, q, ...) -> (E, s, d), (E, q, d), all E episodes in one pass.
        """
        if episodes is None:
            s, z = support_x.shape[0], self.embed(torch.cat([support_x, query_x]))  # one pass: half the kernel launches of two
        else:
            s, x = support_x.shape[1], torch.cat([support_x, query_x], 1)
            z = self.embed(x.flatten(0, 1), episodes).unflatten(0, (episodes, -1))
        # scores in (at least) float32 under bf16 autocast: ||a||^2 - 2ab + ||b||^2 cancels, and bf16 keeps 8 bits
        z = z.float() if z.dtype in (torch.bfloat16, torch.float16) else z
        return z[..., :s, :], z[..., s:, :]

    def embedded_loss(
        self, support_z: torch.Tensor, support_y: torch.Tensor, query_z: torch.Tensor, query_y: torch.Tensor, n_way: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training objective from embeddings (..., s, d), (..., q, d) -> (loss (...), logits (..., q, n_way)).

        Leading dims are episodes, each with its own loss. Cross-entropy of the scores by default.
        """
        logits = self.score(support_z, support_y, query_z, n_way)
        return episode_cross_entropy(logits, query_y), logits

    def episode_loss(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, query_y: torch.Tensor, n_way: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training objective on one episode -> (scalar loss, logits (q, n_way))."""
        return self.loss_of(self.embed_float(support_x, query_x), support_y, query_y, infer_n_way(support_y, n_way))

    def loss_of(
        self, embedded: tuple[torch.Tensor, torch.Tensor], support_y: torch.Tensor, query_y: torch.Tensor, n_way: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """embedded_loss of (support_z, query_z), outside autocast: the scoring stays float32."""
        support_z, query_z = embedded
        with torch.autocast(support_z.device.type, enabled=False):
            return self.embedded_loss(support_z, support_y, query_z, query_y, n_way)

    def episode_loss_batched(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, query_y: torch.Tensor, n_way: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """E episodes stacked: support_x (E, s, c, h, w), support_y (E, s), query_x (E, q, c, h, w), query_y (E, q)
        -> (losses (E,), logits (E, q, n_way)), each episode's as episode_loss gives it (to float rounding).

        This fallback runs them one at a time; learners with `batched` True override it with one pass.
        """
        pairs = [self.episode_loss(*episode, n_way) for episode in zip(support_x, support_y, query_x, query_y, strict=True)]
        return torch.stack([loss for loss, _ in pairs]), torch.stack([logits for _, logits in pairs])

    def explain(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, n_way: int | None = None
    ) -> dict[str, torch.Tensor]:
        """What the learner computed on an episode, for display: at least 'logits' (q, n_way),
        and where it has them 'distance' (q, n_way) or 'similarity', 'attention' (q, s), 'relation' (q, n_way)."""
        return {"logits": self(support_x, support_y, query_x, n_way)}


class EmbeddingLearner(MetaLearner):
    """A learner built on a backbone: embed() runs it, subclasses define score() (and embedded_loss() where
    the objective is not cross-entropy), written for any leading episode dims so that E episodes batch."""

    batched = True

    settings = ("backbone",)

    def __init__(self, config: LearnerConfig, in_channels: int, image_size: int):
        super().__init__(config, in_channels, image_size)
        self.backbone = make_backbone(config.backbone, in_channels, image_size)
        self.embed_dim = self.backbone.out_dim

    def embed(self, x: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        return call_backbone(self.backbone, x, episodes)

    def episode_loss_batched(self, support_x, support_y, query_x, query_y, n_way):
        """E episodes through the backbone in one pass (each on its own batch-norm statistics), then
        the loss of each from its embeddings -> (losses (E,), logits (E, q, n_way))."""
        return self.loss_of(self.embed_float(support_x, query_x, support_y.shape[0]), support_y, query_y, n_way)
