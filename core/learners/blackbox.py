"""A black-box (model-based) learner: a transformer reads the support set as a sequence of
(embedding, one-hot label) pairs and each query reads its label off that sequence (in the spirit of
memory-augmented networks, Santoro et al., 2016, and SNAIL, Mishra et al., 2018).

Design choices:
- One token sequence [support; queries] through one transformer, with an attention mask: support
  tokens attend to the support only, each query to the support and to itself. So a query's logits
  cannot depend on the other queries (their images or their labels), and support and query states
  come out of the same layers, hence comparable.
- No positional encoding: the model is a set model, exactly invariant to the order of the support.
- Read-out by class summary tokens: the final states of each class's support tokens are averaged into
  one summary (n_way, d) and a query's logit for class c is minus the (scaled) squared distance between
  its final state and summary c. Unlike a max-way linear head sliced to n_way, every episode label is
  scored the same way, so a model trained 5-way runs 20-way, and no output unit stays untrained because
  small episodes never use its label.
- Every residual branch starts at zero (its output projection is zero-initialised), so the untrained
  model is a prototype classifier on a random projection of the normalised embeddings; training then
  learns what the attention over the labelled support adds. Without this, random layers scramble the
  states and the model starts at chance.
- Logits depend only on per-image embeddings, so embedding_only stays True: evaluation embeds each
  test image once and score() does the sequence work.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ConfigError
from core.learners.base import EmbeddingLearner
from core.learners.scoring import infer_n_way, pairwise_distance, prototypes

MAX_WAY = 64  # width of the one-hot label slot in each token: the most classes an episode can have
HEADS = 4
LAYERS = 2


class BlackBox(EmbeddingLearner):
    """Conv-4 embeddings -> tokens of width config.hidden -> masked transformer -> class-summary read-out.

    support tokens = W [emb, one_hot(y)], query tokens = W [emb, 0]; logits (q, n_way).
    E episodes batch as E sequences of the encoder (batch_first), after one backbone pass.
    """

    name = "blackbox"
    family = "model"
    settings = ("backbone", "hidden")

    def __init__(self, config, in_channels: int, image_size: int):
        super().__init__(config, in_channels, image_size)
        d = config.hidden
        if d % HEADS:
            raise ValueError(f"hidden={d}: the black-box model needs a multiple of {HEADS} (attention heads)")
        # the backbone's scale drifts (BatchNorm running statistics early in training): normalise it so
        # the image part of a token never drowns in, or drowns, the label part
        self.embed_norm = nn.LayerNorm(self.embed_dim)
        self.token = nn.Linear(self.embed_dim + MAX_WAY, d)
        layer = nn.TransformerEncoderLayer(d, HEADS, dim_feedforward=2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        for block in self.encoder.layers:
            for out in (block.self_attn.out_proj, block.linear2):
                nn.init.zeros_(out.weight)
                nn.init.zeros_(out.bias)
        self.norm = nn.LayerNorm(d)
        # squared distances between layer-normed states of width d are O(d): start the softmax at a sane temperature
        self.log_scale = nn.Parameter(torch.tensor(-math.log(d)))

    def tokens(self, support_z: torch.Tensor, support_y: torch.Tensor, query_z: torch.Tensor, n_way: int) -> torch.Tensor:
        """Embeddings (..., s, e), labels (..., s), query embeddings (..., q, e) -> tokens (..., s+q, d), support first."""
        if n_way > MAX_WAY:
            raise ConfigError(
                f"the black-box learner reads at most {MAX_WAY} classes per episode (got {n_way}); use fewer classes", "n_way"
            )
        z = self.embed_norm(torch.cat([support_z, query_z], -2))
        labels = torch.cat([F.one_hot(support_y, MAX_WAY).to(z.dtype), z.new_zeros(*query_z.shape[:-1], MAX_WAY)], -2)
        return self.token(torch.cat([z, labels], -1))

    def score(self, support_z, support_y, query_z, n_way):
        """(..., s, e), (..., s), (..., q, e) -> (..., q, n_way); each episode one sequence of the encoder's batch."""
        mask = attention_mask(support_z.shape[-2], query_z.shape[-2], support_z.device)
        tokens = self.tokens(support_z, support_y, query_z, n_way)
        # is_causal=False said outright: left unsaid, the encoder compares the mask with a causal one (a GPU sync)
        states = self.encoder(tokens.reshape(-1, *tokens.shape[-2:]), mask=mask, is_causal=False).view(tokens.shape)
        return self.read_out(states, support_y, n_way)

    def read_out(self, states: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
        """Final states (..., s+q, d), support first -> logits (..., q, n_way) against the class summary tokens."""
        states = self.norm(states)
        s = support_y.shape[-1]
        summaries = prototypes(states[..., :s, :], support_y, n_way)  # (..., n_way, d)
        return -pairwise_distance(states[..., s:, :], summaries) * self.log_scale.exp()

    def explain(self, support_x, support_y, query_x, n_way=None):
        """'logits' (q, n_way) and 'attention' (q, s): the last layer's attention of each query on each
        support image, mean over heads (the rest of a query's attention is on itself)."""
        n_way = infer_n_way(support_y, n_way)
        s = support_x.shape[0]
        z = self.embed(torch.cat([support_x, query_x]))
        mask = attention_mask(s, query_x.shape[0], z.device)
        x = self.tokens(z[:s], support_y, z[s:], n_way).unsqueeze(0)
        *first, last = self.encoder.layers
        for layer in first:
            x = layer(x, src_mask=mask)
        # the last layer unrolled (pre-norm order) to keep its attention weights
        h = last.norm1(x)
        attended, weights = last.self_attn(h, h, h, attn_mask=mask, need_weights=True, average_attn_weights=True)
        x = x + attended
        x = x + last.linear2(last.activation(last.linear1(last.norm2(x))))
        return {"logits": self.read_out(x[0], support_y, n_way), "attention": weights[0, s:, :s]}


def attention_mask(n_support: int, n_query: int, device: torch.device) -> torch.Tensor:
    """(s+q, s+q) bool, True where attention is blocked: everyone sees the support; a query also sees itself."""
    n = n_support + n_query
    blocked = torch.ones(n, n, dtype=torch.bool, device=device)
    blocked[:, :n_support] = False
    blocked[n_support:, n_support:] = ~torch.eye(n_query, dtype=torch.bool, device=device)
    return blocked
