"""Matching Networks (Vinyals et al., 2016): attention over the support set, with optional full-context embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn

from core.learners.base import EmbeddingLearner
from core.learners.scoring import embed_episode, infer_n_way, one_hot, pairwise_distance

LOG_FLOOR = math.log(1e-12)  # the logit of a class with no support image: finite, and far below any other


class SupportContext(nn.Module):
    """g(x_i, S) = forward LSTM + backward LSTM over the support set + g'(x_i) (skip), as in the paper.

    A bidirectional LSTM reads the support in order, so with fce the result depends on that order
    (classes come in label order in MetaScope's episodes; images within a class in drawn order).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)

    def forward(self, support_z: torch.Tensor) -> torch.Tensor:
        """(..., s, d) -> (..., s, d): one LSTM batch row per episode."""
        out, _ = self.lstm(support_z.reshape(-1, *support_z.shape[-2:]))  # (episodes, s, 2d)
        forward, backward = out.view(*support_z.shape[:-1], -1).chunk(2, dim=-1)
        return forward + backward + support_z


class QueryContext(nn.Module):
    """f(x̂, S): an LSTM that attends over the context-embedded support for `steps` reads (paper, appendix A.1).

    h_k, c_k = LSTM(f'(x̂), [ĥ_{k-1} + f'(x̂) + r_{k-1}], c_{k-1}); r = Σ softmax(h·g(x_i)) g(x_i).
    The read-out is added to the hidden state rather than concatenated so one hidden size (d) suffices.
    """

    def __init__(self, dim: int, steps: int):
        super().__init__()
        self.cell = nn.LSTMCell(dim, dim)
        self.steps = steps

    def forward(self, query_z: torch.Tensor, support_g: torch.Tensor) -> torch.Tensor:
        """Queries (..., q, d), context-embedded support (..., s, d) -> (..., q, d)."""
        h_hat, c = torch.zeros_like(query_z), torch.zeros_like(query_z)
        for _ in range(self.steps):
            h = h_hat + query_z
            readout = torch.softmax(h @ support_g.transpose(-1, -2), dim=-1) @ support_g  # (..., q, d)
            # the cell takes rows (n, d): flatten the episode dims and back
            h_hat, c = (t.view(query_z.shape) for t in self.cell(query_z.flatten(0, -2), ((h + readout).flatten(0, -2), c.flatten(0, -2))))
        return h_hat + query_z


class MatchingNet(EmbeddingLearner):
    """p(c | x̂) = Σ_i a(x̂, x_i)·[y_i = c], a = softmax over the support of scale · cos(f(x̂), g(x_i)); logits = log p.

    The scale is learned (initial 10): cosines lie in [-1, 1], so with the paper's implicit scale of
    1 the attention stays nearly uniform and p(c|x̂) cannot approach 1, which leaves the
    cross-entropy large and its gradients weak. Learning it lets the softmax sharpen as the
    embedding improves (the temperature of later work, e.g. TADAM).
    """

    name = "matching"
    settings = ("backbone", "fce")
    metric = "cosine"  # what it compares with, whatever config.distance says (read by core.analysis.distances)
    fce_steps = 4  # reads of the support set by the attention LSTM ("a few steps")

    def __init__(self, config, in_channels: int, image_size: int):
        super().__init__(config, in_channels, image_size)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        # The LSTMs see only per-image backbone embeddings, so score() can run them and evaluation can
        # still embed each image once: embedding_only stays True even with fce.
        self.support_context = SupportContext(self.embed_dim) if config.fce else None
        self.query_context = QueryContext(self.embed_dim, self.fce_steps) if config.fce else None

    def cosine(self, support_z: torch.Tensor, query_z: torch.Tensor) -> torch.Tensor:
        """cos(f(x̂), g(x_i)): (..., s, d), (..., q, d) -> (..., q, s); f and g are the identity without fce."""
        if self.support_context is not None:
            support_z = self.support_context(support_z)
            query_z = self.query_context(query_z, support_z)
        return 1.0 - pairwise_distance(query_z, support_z, "cosine")

    def log_attention(self, support_z: torch.Tensor, query_z: torch.Tensor) -> torch.Tensor:
        """log a(x̂, x_i): (..., s, d), (..., q, d) -> (..., q, s); a's rows sum to 1."""
        return torch.log_softmax(self.log_scale.exp() * self.cosine(support_z, query_z), dim=-1)

    def score(self, support_z, support_y, query_z, n_way):
        return class_log_probability(self.log_attention(support_z, query_z), support_y, n_way)

    def explain(self, support_x, support_y, query_x, n_way=None):
        """'logits' (q, n_way) = log p(c|x̂); 'similarity' (q, n_way) = p(c|x̂), the attention each class receives;
        'attention' (q, s) = a(x̂, x_i); 'support_similarity' (q, s) = cos(f(x̂), g(x_i)) before scaling."""
        n_way = infer_n_way(support_y, n_way)
        support_z, query_z = embed_episode(self.embed, support_x, query_x)
        cosine = self.cosine(support_z, query_z)
        log_attention = torch.log_softmax(self.log_scale.exp() * cosine, dim=1)
        logits = class_log_probability(log_attention, support_y, n_way)
        return {"logits": logits, "similarity": logits.exp(), "attention": log_attention.exp(), "support_similarity": cosine}


def class_log_probability(log_attention: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
    """log p(c|x̂) = log Σ_i a(x̂, x_i)·[y_i = c]: log attention (..., q, s), labels (..., s) -> (..., q, n_way).

    Summed in log space (logsumexp over each class's support images) rather than as log(Σ a).clamp(floor):
    a query the model gets badly wrong keeps the gradient that pulls it to its class.
    """
    member = one_hot(support_y, n_way, torch.bool).transpose(-1, -2).unsqueeze(-3)  # (..., 1, n_way, s)
    # a finite fill, not -inf: logsumexp's backward over an all -inf row would give nan
    masked = log_attention.unsqueeze(-2).masked_fill(~member, torch.finfo(log_attention.dtype).min)  # (..., q, n_way, s)
    return torch.where(member.any(-1), masked.logsumexp(-1), LOG_FLOOR)
