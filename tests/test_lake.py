"""Lake's one-shot protocol: drawers from file names, episodes on the real zips, error and CI, other data refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from core.config import LearnerConfig
from core.data.base import DataError, ImageSet
from core.data.omniglot import load_omniglot, parse_drawers
from core.data.splits import OMNIGLOT_MINIMAL_SPLIT, split_classes
from core.lake import (
    LAKE_WAYS,
    LakeEpisodes,
    LakeOptions,
    check_lake_data,
    evaluate_lake,
    lake_episodes,
    lake_logits,
    lake_result,
    reference_errors,
    sinkhorn,
)
from core.lake import _embeddings as embeddings_of_copies
from core.learners import make_learner


@pytest.fixture(scope="module")
def minimal(omniglot_dir: Path) -> ImageSet:
    return load_omniglot(omniglot_dir)


def test_drawer_is_the_number_after_the_underscore():
    assert parse_drawers(["0394_01.png", "0394_20.png", "1200_7.PNG"]) == [1, 20, 7]
    assert parse_drawers(["0394_01.png", "scan.png"]) is None  # one name that does not say: no drawers at all
    assert parse_drawers([]) is None


def test_every_minimal_character_has_one_image_by_each_of_20_drawers(minimal: ImageSet):
    assert minimal.drawers is not None and minimal.drawers.shape == minimal.labels.shape
    for class_id in (0, 100, 241):
        assert sorted(minimal.drawers[minimal.indices_of(class_id)].tolist()) == list(range(1, 21))


def test_drawers_survive_the_cache(omniglot_dir: Path, tmp_path: Path):
    first = load_omniglot(omniglot_dir, image_size=20, cache_root=tmp_path)
    second = load_omniglot(omniglot_dir, image_size=20, cache_root=tmp_path)  # read back from the cache
    assert second.drawers is not None and torch.equal(first.drawers, second.drawers)


def test_lake_episodes_on_the_real_test_alphabets(minimal: ImageSet):
    split = split_classes(minimal)
    drawn = lake_episodes(minimal, split.test, episodes=200, seed=3)
    assert drawn.support.shape == drawn.query.shape == (200, LAKE_WAYS)
    assert set(drawn.alphabets) == set(OMNIGLOT_MINIMAL_SPLIT["test"])  # both test alphabets, nothing else
    for e in range(200):
        support, query = drawn.support[e], drawn.query[e]
        classes = minimal.labels[support]
        assert torch.equal(classes, minimal.labels[query])  # query i is the character of support i
        assert len(set(classes.tolist())) == LAKE_WAYS  # no character repeated: 20 queries of 20 characters
        assert {minimal.class_groups[c] for c in classes.tolist()} == {drawn.alphabets[e]}  # one alphabet
        first, second = drawn.drawers[e].tolist()
        assert first != second
        assert set(minimal.drawers[support].tolist()) == {first} and set(minimal.drawers[query].tolist()) == {second}


def test_lake_episodes_are_seeded(minimal: ImageSet):
    test = split_classes(minimal).test
    a, b, c = (lake_episodes(minimal, test, 20, seed) for seed in (1, 1, 2))
    assert torch.equal(a.support, b.support) and torch.equal(a.query, b.query) and a.alphabets == b.alphabets
    assert not torch.equal(a.support, c.support)


def test_too_small_alphabets_say_how_far_to_lower_n_way(minimal: ImageSet):
    with pytest.raises(DataError, match="largest has 17.*at most 17 classes"):
        lake_episodes(minimal, split_classes(minimal).val, 5)  # Tagalog: 17 characters
    assert lake_episodes(minimal, split_classes(minimal).val, 5, n_way=17).n_way == 17


def _two_alphabets() -> ImageSet:
    """Alphabet A: 4 characters, whose drawer-2 images of characters 2 and 3 look like each other's drawer-1 images;
    alphabet B: 4 characters drawn identically by both drawers. So pixel_nn misses 2 of 4 queries in A, none in B."""
    g = torch.Generator().manual_seed(0)
    patterns = (torch.rand(8, 1, 12, 12, generator=g) > 0.5).to(torch.uint8) * 255
    looks = {0: [0, 1, 2, 3], 1: [0, 1, 3, 2]}  # drawer index -> pattern of each A character
    images, labels, drawers = [], [], []
    for c in range(8):
        for d in (0, 1):
            images.append(patterns[looks[d][c]] if c < 4 else patterns[c])
            labels.append(c)
            drawers.append(d + 1)
    return ImageSet(
        "two-alphabets", torch.stack(images), torch.tensor(labels), tuple(f"c{i}" for i in range(8)),
        ("A",) * 4 + ("B",) * 4, drawers=torch.tensor(drawers),
    )  # fmt: skip


def test_error_and_ci_of_a_learner_whose_answers_are_known():
    data = _two_alphabets()
    pixel_nn = make_learner(LearnerConfig(method="pixel_nn"), 1, 12)
    result = evaluate_lake(pixel_nn, data, range(8), episodes=400, seed=0, n_way=4)
    share_a = sum(a == "A" for a in lake_episodes(data, range(8), 400, 0, 4).alphabets) / 400
    assert 0.4 < share_a < 0.6  # both alphabets drawn
    assert result.alphabet_error == {"A": 50.0, "B": 0.0}
    assert result.error == pytest.approx(50 * share_a)
    std = math.sqrt(share_a * (1 - share_a) * 400 / 399) * 50  # per-episode errors are 50 or 0
    assert result.ci95 == pytest.approx(1.96 * std / math.sqrt(400))
    assert result.summary() == f"error: {result.error:.2f} ± {result.ci95:.2f}"


def test_lake_result_by_hand():
    result = lake_result(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]]), ["X", "Y"])
    assert result.episode_error == [25.0, 0.0] and result.error == 12.5
    assert result.ci95 == pytest.approx(1.96 * math.sqrt(2 * 12.5**2) / math.sqrt(2))
    assert result.to_dict()["protocol"] == "lake"


def test_fast_embedding_path_equals_forward_per_episode(minimal: ImageSet):
    torch.manual_seed(0)
    learner = make_learner(LearnerConfig(method="protonet"), 1, 28)
    drawn = lake_episodes(minimal, split_classes(minimal).test, 6, seed=0)
    fast = lake_logits(learner, minimal, drawn)
    learner.embedding_only = False  # the instance now takes the per-episode forward path
    slow = lake_logits(learner, minimal, drawn)
    assert fast.shape == (6, LAKE_WAYS, LAKE_WAYS)
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-3)


def test_data_without_alphabets_or_drawers_is_refused_in_one_line(toy_set: ImageSet):
    for data in (toy_set, ImageSet("grouped", toy_set.images, toy_set.labels, toy_set.class_names, ("g",) * toy_set.n_classes)):
        with pytest.raises(DataError, match="needs alphabet and drawer information") as caught:
            check_lake_data(data)
        assert "\n" not in str(caught.value)


def test_reference_rows_name_their_conditions():
    rows = reference_errors()
    by_name = {(r["name"], r["error"]) for r in rows}
    assert {("people", 4.5), ("BPL", 3.3), ("Siamese convnet", 8.0), ("deep convnet", 13.5)} <= by_name
    assert sorted(r["error"] for r in rows if r["name"] == "deep convnet (minimal)") == [22.3, 24.0]
    assert all(r["condition"] for r in rows)


def _shifted_drawers(shift: int) -> ImageSet:
    """One alphabet of 6 characters: drawer 2 wrote each exactly as drawer 1 did, `shift` grey levels brighter."""
    g = torch.Generator().manual_seed(1)
    patterns = (torch.rand(6, 1, 10, 10, generator=g) > 0.6).to(torch.uint8) * 200
    images = torch.stack([p + (shift if d == 2 else 0) for p in patterns for d in (1, 2)]).to(torch.uint8)
    return ImageSet(
        "shifted", images, torch.arange(6).repeat_interleave(2), tuple(f"c{i}" for i in range(6)), ("A",) * 6,
        drawers=torch.tensor([1, 2] * 6),
    )  # fmt: skip


def test_centering_removes_what_one_drawer_shifts_alike():
    pixel_nn = make_learner(LearnerConfig(method="pixel_nn"), 1, 10)
    plain, shifted = _shifted_drawers(0), _shifted_drawers(50)
    episodes = lake_episodes(shifted, range(6), 20, seed=0, n_way=6)
    centered = LakeOptions(center=True)
    torch.testing.assert_close(
        lake_logits(pixel_nn, shifted, episodes, options=centered), lake_logits(pixel_nn, plain, episodes, options=centered)
    )
    assert evaluate_lake(pixel_nn, shifted, range(6), 20, n_way=6, options=centered).error == 0.0


def test_balance_gives_each_query_its_own_character():
    logits = torch.tensor([[5.0, 4.0, 0.0], [6.0, 1.0, 0.0], [0.0, 0.0, 3.0]])  # queries 0 and 1 both prefer class 0
    balanced = sinkhorn(logits)
    torch.testing.assert_close(balanced.exp().sum(0), torch.ones(3), atol=1e-2, rtol=0)
    torch.testing.assert_close(balanced.exp().sum(1), torch.ones(3), atol=1e-2, rtol=0)
    assert logits.argmax(1).tolist() == [0, 0, 2] and balanced.argmax(1).tolist() == [1, 0, 2]


def test_refinement_and_test_time_augmentation_keep_easy_answers_and_follow_the_seed(minimal: ImageSet):
    torch.manual_seed(0)
    learner = make_learner(LearnerConfig(method="protonet", backbone="conv4-global"), 1, 28)
    drawn = lake_episodes(minimal, split_classes(minimal).test, 4, seed=0)
    plain = lake_logits(learner, minimal, drawn)
    assert torch.equal(lake_logits(learner, minimal, drawn, options=LakeOptions(tta=0)), plain)
    tta = [lake_logits(learner, minimal, drawn, options=LakeOptions(tta=2, seed=s)) for s in (0, 0, 1)]
    assert torch.equal(tta[0], tta[1]) and not torch.equal(tta[0], tta[2]) and not torch.equal(tta[0], plain)
    same = LakeEpisodes(drawn.support, drawn.support, drawn.drawers, drawn.alphabets)  # queries = supports: all right
    refined = lake_logits(learner, minimal, same, options=LakeOptions(refine=3))
    assert (refined.argmax(-1) == torch.arange(LAKE_WAYS)).all()


def test_test_time_options_need_an_embedding_learner(minimal: ImageSet):
    learner = make_learner(LearnerConfig(method="protonet"), 1, 28)
    learner.embedding_only = False
    drawn = lake_episodes(minimal, split_classes(minimal).test, 2, seed=0)
    with pytest.raises(DataError, match="need an embedding learner"):
        lake_logits(learner, minimal, drawn, options=LakeOptions(center=True))
    assert LakeOptions(tta=4, center=True, refine=2, balance=True).tag == "tta4-center-refine2-balance" and LakeOptions().tag == ""


@torch.no_grad()
def test_align_scores_each_pair_by_its_best_aligned_copies(minimal: ImageSet):
    torch.manual_seed(0)
    learner = make_learner(LearnerConfig(method="protonet", backbone="conv4-global"), 1, 28).eval()
    drawn = lake_episodes(minimal, split_classes(minimal).test, 2, seed=0)
    options = LakeOptions(tta=3, tta_strength=1.5, align=True)
    logits = lake_logits(learner, minimal, drawn, options=options)
    used, local = torch.unique(torch.cat([drawn.support, drawn.query], 1), return_inverse=True)
    copies = embeddings_of_copies(learner, minimal.images[used], "cpu", options)  # (1 + 3, images, d)
    mean, labels = copies.mean(0), torch.arange(LAKE_WAYS)
    for e in range(2):  # by the definition, with the learner's own score: the best query copy, plus the best support copy
        s, q = local[e, :LAKE_WAYS], local[e, LAKE_WAYS:]
        by_query = torch.stack([learner.score(mean[s], labels, c[q], LAKE_WAYS) for c in copies]).amax(0)
        by_support = torch.stack([learner.score(c[s], labels, mean[q], LAKE_WAYS) for c in copies]).amax(0)
        torch.testing.assert_close(logits[e], by_query + by_support, rtol=1e-4, atol=1e-3)
    averaged = lake_logits(learner, minimal, drawn, options=LakeOptions(tta=3, tta_strength=1.5))
    assert not torch.allclose(logits, averaged)


@torch.no_grad()
def test_the_strength_of_test_time_copies_scales_how_far_they_move(minimal: ImageSet):
    learner = make_learner(LearnerConfig(method="protonet", backbone="conv4-global"), 1, 28).eval()
    images = minimal.images[:64]
    spread = []
    for strength in (0.5, 1.0, 2.0):
        copies = embeddings_of_copies(learner, images, "cpu", LakeOptions(tta=4, tta_strength=strength))
        spread.append((copies[1:] - copies[0]).norm(dim=-1).mean().item())
    assert spread[0] < spread[1] < spread[2]


def test_align_and_strength_are_refused_where_they_mean_nothing():
    with pytest.raises(DataError, match="give tta"):
        LakeOptions(align=True)
    with pytest.raises(DataError, match="without center or refine"):
        LakeOptions(tta=2, align=True, center=True)
    with pytest.raises(DataError, match="strength of the test-time copies must be above 0"):
        LakeOptions(tta=2, tta_strength=0)
    assert LakeOptions(tta=32, tta_strength=1.5, align=True, balance=True).tag == "tta32x1.5-align-balance"
