"""Every learner's interface invariants, and what each metric-based learner computes, on tiny seeded tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.analysis.distances import learner_metric
from core.config import LearnerConfig, TrainConfig
from core.episodes import ClassPool, EpisodeSampler
from core.learners import LEARNERS, make_learner
from core.learners.scoring import prototypes
from core.training.trainer import Callback, Trainer
from tests.conftest import make_toy_set

N_WAY, K_SHOT, Q_QUERY, SIZE = 3, 2, 2, 16


def build(method: str, **settings) -> nn.Module:
    torch.manual_seed(0)
    return make_learner(LearnerConfig(method=method, **settings), 1, SIZE).eval()


@pytest.fixture
def episode() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Support ordered class by class (K_SHOT rows each), queries likewise."""
    g = torch.Generator().manual_seed(0)
    support_x = torch.rand(N_WAY * K_SHOT, 1, SIZE, SIZE, generator=g)
    query_x = torch.rand(N_WAY * Q_QUERY, 1, SIZE, SIZE, generator=g)
    support_y = torch.arange(N_WAY).repeat_interleave(K_SHOT)
    query_y = torch.arange(N_WAY).repeat_interleave(Q_QUERY)
    return support_x, support_y, query_x, query_y


def points(*xy: tuple[float, float]) -> torch.Tensor:
    return torch.tensor(xy, dtype=torch.float32)


# ---- the interface, for every registered learner ----


@pytest.mark.parametrize("method", sorted(LEARNERS))
def test_logits_have_one_column_per_class_and_are_deterministic(method, episode):
    support_x, support_y, query_x, _ = episode
    learner = build(method)
    logits = learner(support_x, support_y, query_x, N_WAY)
    assert logits.shape == (N_WAY * Q_QUERY, N_WAY) and torch.isfinite(logits).all()
    assert torch.equal(logits, learner(support_x, support_y, query_x, N_WAY))
    assert torch.equal(logits, build(method)(support_x, support_y, query_x, N_WAY))  # same seed, same learner


@pytest.mark.parametrize("method", sorted(LEARNERS))
def test_order_of_support_images_within_a_class_does_not_matter(method, episode):
    support_x, support_y, query_x, _ = episode
    learner = build(method)
    swap = torch.arange(N_WAY * K_SHOT).view(N_WAY, K_SHOT).flip(1).flatten()  # reverse each class's shots
    assert torch.equal(support_y[swap], support_y)
    torch.testing.assert_close(
        learner(support_x[swap], support_y, query_x, N_WAY), learner(support_x, support_y, query_x, N_WAY), atol=1e-4, rtol=1e-4
    )


# The black-box learner feeds labels in as learned one-hot inputs, so which index a class gets changes
# its computation: it is equivariant to relabelling only as far as training makes it.
LABEL_AWARE = {"blackbox"}


@pytest.mark.parametrize("method", sorted(set(LEARNERS) - LABEL_AWARE))
def test_relabelling_the_classes_permutes_the_logit_columns(method, episode):
    support_x, support_y, query_x, _ = episode
    learner = build(method)
    perm = torch.tensor([2, 0, 1])  # class c is called perm[c]
    logits = learner(support_x, support_y, query_x, N_WAY)
    relabelled = learner(support_x, perm[support_y], query_x, N_WAY)
    torch.testing.assert_close(relabelled[:, perm], logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", ["matching", "relation", "siamese", "triplet", "protonet"])
def test_explain_returns_the_forward_logits(method, episode):
    support_x, support_y, query_x, _ = episode
    learner = build(method)
    shown = learner.explain(support_x, support_y, query_x, N_WAY)
    torch.testing.assert_close(shown["logits"], learner(support_x, support_y, query_x, N_WAY))
    for key, value in shown.items():
        if key != "prototypes":
            assert value.shape[0] == N_WAY * Q_QUERY, key


# ---- ProtoNet ----


def test_prototypes_are_class_means_and_protonet_logits_are_minus_squared_distance():
    g = torch.Generator().manual_seed(1)
    z, y = torch.randn(7, 4, generator=g), torch.tensor([0, 2, 1, 0, 2, 2, 1])
    means = torch.stack([z[y == c].mean(0) for c in range(3)])
    torch.testing.assert_close(prototypes(z, y, 3), means)
    queries = torch.randn(5, 4, generator=g)
    expected = -((queries.unsqueeze(1) - means.unsqueeze(0)) ** 2).sum(-1)
    torch.testing.assert_close(build("protonet").score(z, y, queries, 3), expected, atol=1e-5, rtol=1e-5)


# ---- Matching Networks ----


@pytest.mark.parametrize("fce", [False, True])
def test_matching_attention_rows_sum_to_one_and_class_probabilities_too(fce, episode):
    support_x, support_y, query_x, _ = episode
    shown = build("matching", fce=fce).explain(support_x, support_y, query_x, N_WAY)
    assert shown["attention"].shape == (N_WAY * Q_QUERY, N_WAY * K_SHOT)
    torch.testing.assert_close(shown["attention"].sum(1), torch.ones(N_WAY * Q_QUERY))
    torch.testing.assert_close(shown["similarity"].sum(1), torch.ones(N_WAY * Q_QUERY))
    torch.testing.assert_close(shown["logits"], shown["similarity"].log())


def test_matching_support_distances_on_the_distances_page_are_cosine():
    assert learner_metric(build("matching")) == "cosine"  # not config.distance: attention compares by cosine


def test_matching_logits_are_log_of_attention_summed_per_class():
    learner = build("matching")
    with torch.no_grad():
        learner.log_scale.fill_(math.log(2.0))
    support = points((1, 0), (0, 1), (-1, 0))  # classes 0, 0, 1: cosines to the query (1, 1) are .707, .707, -.707
    logits = learner.score(support, torch.tensor([0, 0, 1]), points((1, 1)), 3)
    near, far = math.exp(2 * math.sqrt(0.5)), math.exp(-2 * math.sqrt(0.5))
    p0 = 2 * near / (2 * near + far)
    assert logits[0, 0].item() == pytest.approx(math.log(p0), abs=1e-5)
    assert logits[0, 1].item() == pytest.approx(math.log(1 - p0), abs=1e-5)
    assert logits[0, 2].item() == pytest.approx(math.log(1e-12), abs=1e-3)  # a class without support: the floor, finite


def test_matching_pulls_a_badly_wrong_query_towards_its_class():
    learner = build("matching")
    with torch.no_grad():
        learner.log_scale.fill_(math.log(40.0))  # sharp attention: p(true class) ~ e^-80, far below any clamp
    support = points((1, 0), (-1, 0)).requires_grad_()
    query = points((-1, 0.2)).requires_grad_()
    logits = learner.score(support, torch.tensor([0, 1]), query, 2)
    assert logits[0, 0].item() < -60
    nn.functional.cross_entropy(logits, torch.tensor([0])).backward()
    assert support.grad[0].abs().sum() > 1 and query.grad[0, 0] < 0  # descent moves the query towards (1, 0)


# ---- Relation Networks ----


def test_relation_scores_lie_in_0_1_and_the_loss_is_mse_to_one_hot(episode):
    support_x, support_y, query_x, query_y = episode
    learner = build("relation")
    relation = learner.explain(support_x, support_y, query_x, N_WAY)["relation"]
    assert relation.shape == (N_WAY * Q_QUERY, N_WAY)  # one score per query and class, as the Distances page draws it
    assert ((relation >= 0) & (relation <= 1)).all()
    loss, logits = learner.episode_loss(support_x, support_y, query_x, query_y, N_WAY)
    target = torch.eye(N_WAY)[query_y]
    torch.testing.assert_close(loss, ((torch.sigmoid(logits) - target) ** 2).mean())


def test_relation_sees_a_class_only_through_the_sum_of_its_embeddings():
    learner = build("relation")
    g = torch.Generator().manual_seed(2)
    support, queries = torch.randn(4, learner.embed_dim, generator=g), torch.randn(3, learner.embed_dim, generator=g)
    labels = torch.tensor([0, 0, 1, 1])
    regrouped = torch.stack([support[0] + support[1], torch.zeros_like(support[0]), support[2], support[3]])
    torch.testing.assert_close(learner.score(regrouped, labels, queries, 2), learner.score(support, labels, queries, 2))


# ---- Siamese and Triplet: nearest support image vs nearest class mean ----

# Class 0 has support images at (0, 0) and (10, 0), mean (5, 0); class 1 at (3, 1) and (3, -1), mean (3, 0).
# The query (0.5, 0) is nearest to a class-0 image but nearest to the class-1 mean.
SPLIT_SUPPORT, SPLIT_LABELS, SPLIT_QUERY = points((0, 0), (10, 0), (3, 1), (3, -1)), torch.tensor([0, 0, 1, 1]), points((0.5, 0))


def test_siamese_classifies_by_the_nearest_support_image():
    logits = build("siamese").score(SPLIT_SUPPORT, SPLIT_LABELS, SPLIT_QUERY, 2)
    assert logits.argmax(1).item() == 0
    assert logits[0].tolist() == pytest.approx([-0.5, -math.hypot(2.5, 1)], abs=1e-4)  # minus Euclidean distance


def test_triplet_classifies_by_the_nearest_class_mean():
    logits = build("triplet").score(SPLIT_SUPPORT, SPLIT_LABELS, SPLIT_QUERY, 2)
    assert logits.argmax(1).item() == 1
    assert logits[0].tolist() == pytest.approx([-4.5, -2.5], abs=1e-4)


@pytest.mark.parametrize("method", ["siamese", "triplet"])
def test_pair_learners_embed_on_the_unit_sphere(method, episode):
    z = build(method).embed(episode[0])
    torch.testing.assert_close(z.norm(dim=1), torch.ones(z.shape[0]))


def test_siamese_loss_averages_positive_and_negative_pairs_separately():
    learner = build("siamese")
    learner.backbone = nn.Flatten()  # 2-D points are their own embeddings (then normalised)
    support, query = points((1, 0), (0, 1)), points((0.6, 0.8), (0, 1))
    loss, _ = learner.episode_loss(support, torch.tensor([0, 1]), query, torch.tensor([0, 1]), 2)
    # positives (q0,s0) = sqrt(.8), (q1,s1) = 0; negatives within margin 1: (q0,s1) = sqrt(.4); (q1,s0), (s0,s1) = sqrt(2)
    expected = (math.sqrt(0.8) + 0) / 2 + (1 - math.sqrt(0.4) + 0 + 0) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_triplet_loss_of_an_episode_uses_its_support_and_queries():
    learner = build("triplet", margin=0.5)
    learner.backbone = nn.Flatten()
    support, query = points((1, 0), (0, 1)), points((0.6, 0.8), (0, -1))
    loss, _ = learner.episode_loss(support, torch.tensor([0, 1]), query, torch.tensor([0, 1]), 2)
    # anchors s0, s1, q0, q1 with their farthest positive and nearest negative:
    # s0: (q0 sqrt.8, s1 or q1 sqrt2); s1: (q1 2, q0 sqrt.4); q0: (s0 sqrt.8, s1 sqrt.4); q1: (s1 2, s0 sqrt2)
    triplets = [(math.sqrt(0.8), math.sqrt(2)), (2, math.sqrt(0.4)), (math.sqrt(0.8), math.sqrt(0.4)), (2, math.sqrt(2))]
    hinge = [max(0.0, ap - an + 0.5) for ap, an in triplets]
    assert loss.item() == pytest.approx(sum(hinge) / 4, abs=1e-5)


# ---- each learner learns ----


class LossLog(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_log(self, trainer, record):
        self.losses.append(record["loss"])


@pytest.mark.parametrize(
    ("method", "settings"),
    [("matching", {}), ("matching", {"fce": True}), ("relation", {}), ("siamese", {}), ("triplet", {}), ("protonet", {})],
)
def test_a_short_training_run_lowers_the_loss(method, settings):
    image_set = make_toy_set(n_classes=8, per_class=8, size=SIZE, seed=3)
    sampler = EpisodeSampler(ClassPool(image_set, range(8)), 5, 1, 3, seed=0)
    config = TrainConfig(episodes=40, lr=3e-3, log_every=10, val_every=0, schedule="constant")
    learner = build(method, **settings).train()
    log = LossLog()
    Trainer(learner, sampler, config, [log]).fit()
    assert log.losses[-1] < 0.7 * log.losses[0], log.losses
