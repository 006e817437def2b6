"""Analysis engine: embeddings of episodes and samples, the learner's matrices, neighbours, exports."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from core.analysis.distances import episode_matrices, learner_metric, most_confused, nearest_neighbours
from core.analysis.embeddings import (
    NO_PREDICTION,
    check_input,
    embed_episode,
    embed_images,
    embed_sample,
    nearest_mean_predictions,
    sample_splits,
)
from core.analysis.export import coordinates_csv, metadata_tsv, projector_files, sprite_geometry, zip_files
from core.config import LearnerConfig
from core.data import DataError, split_classes
from core.episodes import ClassPool, EpisodeSampler
from core.learners import make_learner
from core.learners.scoring import pairwise_distance
from tests.conftest import make_toy_set


@pytest.fixture(scope="module")
def toy():
    return make_toy_set(n_classes=12, per_class=10, size=16)


@pytest.fixture(scope="module")
def episode(toy):
    return EpisodeSampler(ClassPool(toy, range(12)), 4, 2, 3, seed=1).sample()


def protonet(distance: str = "euclidean"):
    torch.manual_seed(0)
    return make_learner(LearnerConfig(distance=distance), 1, 16)


def test_embed_images_is_batched_eval_and_restores_mode(toy) -> None:
    learner = protonet().train()
    whole = embed_images(learner, toy.images[:40], batch=1000)
    assert whole.shape == (40, learner.embed_dim) and whole.dtype == np.float32
    np.testing.assert_allclose(embed_images(learner, toy.images[:40], batch=7), whole, atol=1e-5)
    assert learner.training  # put back as it was
    with pytest.raises(DataError, match="1x28x28"):
        check_input(make_learner(LearnerConfig(), 1, 28), toy.image_shape)


def test_a_learner_for_other_images_is_refused_with_a_message(episode) -> None:
    for analyse in (episode_matrices, embed_episode):
        with pytest.raises(DataError, match="trained on"):
            analyse(make_learner(LearnerConfig(), 1, 28), episode)


def test_embed_episode_points_prototypes_and_predictions(episode) -> None:
    learner = protonet().eval()
    points = embed_episode(learner, episode)
    n_s, n_q = 8, 12
    assert len(points) == n_s + n_q
    assert points.group.tolist() == ["support"] * n_s + ["query"] * n_q
    ids = torch.tensor(episode.class_ids)
    np.testing.assert_array_equal(points.class_ids, ids[torch.cat([episode.support_y, episode.query_y])].numpy())
    np.testing.assert_array_equal(points.image_idx, torch.cat([episode.support_idx, episode.query_idx]).numpy())
    support_means = points.z[:n_s].reshape(4, 2, -1).mean(1)  # support is class by class, 2 shots each
    np.testing.assert_allclose(points.prototypes, support_means, atol=1e-5)
    expected = ids[learner(episode.support_x, episode.support_y, episode.query_x).argmax(1)].numpy()
    np.testing.assert_array_equal(points.predicted[n_s:], expected)
    assert (points.predicted[:n_s] == NO_PREDICTION).all()
    outcome = points.outcome()
    assert set(outcome[:n_s]) == {"support"}
    assert ((outcome[n_s:] == "correct") == (expected == points.class_ids[n_s:])).all()
    part = points.subset(np.array([0, 9]))
    assert len(part) == 2 and part.prototypes is points.prototypes


def test_sample_splits_is_seeded_and_stays_in_the_splits(toy) -> None:
    split = split_classes(toy, seed=0)
    indices, groups = sample_splits(toy, split, ["val", "test"], 30, seed=4)
    again, _ = sample_splits(toy, split, ["val", "test"], 30, seed=4)
    np.testing.assert_array_equal(indices, again)
    assert len(indices) == 30 and np.all(np.diff(indices) > 0)
    for index, group in zip(indices, groups, strict=True):
        assert int(toy.labels[index]) in split.classes(group)
    everything, _ = sample_splits(toy, split, ["test"], 10_000)
    assert len(everything) == sum(int((toy.labels == c).sum()) for c in split.classes("test"))
    with pytest.raises(DataError, match="at least one split"):
        sample_splits(toy, split, [], 10)


def brute_loo_predictions(z: np.ndarray, labels: np.ndarray, metric: str) -> np.ndarray:
    out = []
    for i in range(len(z)):
        best, best_d = None, np.inf
        for c in np.unique(labels):
            members = (labels == c) & (np.arange(len(z)) != i)
            if not members.any():
                continue
            mean = torch.from_numpy(z[members].mean(0, keepdims=True))
            d = pairwise_distance(torch.from_numpy(z[i : i + 1]), mean, metric).item()
            if d < best_d:
                best, best_d = c, d
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_leave_one_out_nearest_mean_against_brute_force(metric: str) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([3, 7, 9], [6, 5, 4])
    z = (rng.normal(size=(3, 5))[np.searchsorted([3, 7, 9], labels)] + 0.9 * rng.normal(size=(15, 5))).astype(np.float32)
    np.testing.assert_array_equal(nearest_mean_predictions(z, labels, metric, chunk=4), brute_loo_predictions(z, labels, metric))


def test_embed_sample_predicts_with_the_learners_metric(toy) -> None:
    learner = protonet("cosine")
    indices, groups = sample_splits(toy, split_classes(toy), ["train"], 40, seed=0)
    points = embed_sample(learner, toy, indices, groups, learner_metric(learner))
    assert learner_metric(learner) == "cosine" and points.prototypes is None
    np.testing.assert_array_equal(points.predicted, brute_loo_predictions(points.z, points.class_ids, "cosine"))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_nearest_neighbours_against_brute_force(metric: str) -> None:
    z = np.random.default_rng(2).normal(size=(50, 6)).astype(np.float32)
    rows, distances = nearest_neighbours(z, 17, k=5, metric=metric)
    if metric == "euclidean":
        brute = np.linalg.norm(z - z[17], axis=1)
    else:
        unit = z / np.linalg.norm(z, axis=1, keepdims=True)
        brute = 1 - unit @ unit[17]
    brute[17] = np.inf
    np.testing.assert_array_equal(rows, np.argsort(brute)[:5])
    np.testing.assert_allclose(distances, np.sort(brute)[:5], atol=1e-5)
    assert len(nearest_neighbours(z[:3], 0, k=10)[0]) == 2


def test_protonet_matrices_are_its_distances_to_prototypes(episode) -> None:
    learner = protonet().eval()
    m = episode_matrices(learner, episode)
    z = learner.embed(torch.cat([episode.support_x, episode.query_x])).detach()
    protos = z[:8].reshape(4, 2, -1).mean(1)
    np.testing.assert_allclose(m.query_class, pairwise_distance(z[8:], protos).numpy(), rtol=1e-4, atol=1e-4)
    assert m.kind == "distance" and m.lower_is_closer and m.query_support is None
    np.testing.assert_array_equal(m.predicted, m.query_class.argmin(1))
    np.testing.assert_allclose(m.probabilities.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(m.true, episode.query_y.numpy())
    assert m.support_support.shape == (8, 8)
    np.testing.assert_allclose(m.support_support, m.support_support.T, atol=1e-3)
    np.testing.assert_allclose(np.diag(m.support_support), 0.0, atol=1e-3)


def test_pixel_baseline_matrices_use_raw_pixels(episode) -> None:
    m = episode_matrices(make_learner(LearnerConfig(method="pixel_nn"), 1, 16), episode)
    pixels = episode.support_x.flatten(1)
    np.testing.assert_allclose(m.support_support, pairwise_distance(pixels, pixels).numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(m.predicted, m.query_class.argmin(1))


def test_projector_files_parse_back() -> None:
    n, d = 10, 3
    z = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8)
    files = projector_files(z, {"class": [f"c\t{i % 3}" for i in range(n)], "split": ["test"] * n}, images)
    np.testing.assert_allclose(np.loadtxt(io.BytesIO(files["tensors.tsv"]), delimiter="\t"), z, rtol=1e-5)
    rows = files["metadata.tsv"].decode().splitlines()
    assert rows[0] == "class\tsplit" and len(rows) == n + 1 and rows[1] == "c 0\ttest"  # a tab in a value would add a column
    sprite = Image.open(io.BytesIO(files["sprite.png"]))
    assert sprite.size == (4 * 8, 4 * 8)  # ceil(sqrt(10)) = 4 thumbnails a side
    np.testing.assert_array_equal(np.asarray(sprite)[8:16, 0:8], images[4, 0].numpy())  # row-major: point 4 starts row 2
    config = files["projector_config.pbtxt"].decode()
    assert 'tensor_path: "tensors.tsv"' in config and "single_image_dim: 8" in config and "tensor_shape: 10" in config
    names = zipfile.ZipFile(io.BytesIO(zip_files(files))).namelist()
    assert sorted(n.split("/")[-1] for n in names) == sorted(files) and all(n.startswith("metascope-projector/") for n in names)


def test_single_metadata_column_has_no_header_and_lengths_are_checked() -> None:
    assert metadata_tsv({"class": ["a", "b"]}).decode().splitlines() == ["a", "b"]
    with pytest.raises(ValueError, match="differ in length"):
        metadata_tsv({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="one per point"):
        projector_files(np.zeros((3, 2)), {"class": [1, 2]})


def test_sprite_shrinks_thumbnails_to_fit_the_projector_limit() -> None:
    assert sprite_geometry(5000, 28) == (71, 28)
    side, thumb = sprite_geometry(50_000, 84)
    assert side == 224 and thumb == 8192 // 224 and side * thumb <= 8192
    files = projector_files(np.zeros((5, 2)), {"i": range(5)}, torch.zeros(5, 3, 6, 6, dtype=torch.uint8))
    assert Image.open(io.BytesIO(files["sprite.png"])).mode == "RGB"


def test_coordinates_csv_parses_back() -> None:
    coords = np.array([[0.5, -1.25], [2.0, 3.0]], dtype=np.float32)
    rows = list(csv.DictReader(io.StringIO(coordinates_csv(coords, {"class": ["a, b", "c"], "index": [4, 9]}).decode())))
    assert rows == [{"x": "0.5", "y": "-1.25", "class": "a, b", "index": "4"}, {"x": "2", "y": "3", "class": "c", "index": "9"}]


def test_core_analysis_imports_no_ui_library() -> None:
    modules = ", ".join(f"core.analysis.{m}" for m in ("embeddings", "projection", "distances", "export", "warmup"))
    code = f"import sys, {modules}; "
    code += "print([m for m in ('streamlit', 'plotly') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_each_learner_family_explains_itself(episode) -> None:
    torch.manual_seed(0)
    learner = make_learner(LearnerConfig(method="siamese"), 1, 16).eval()
    siamese = episode_matrices(learner, episode)
    z = learner.embed(episode.support_x).detach()
    np.testing.assert_allclose(siamese.support_support, pairwise_distance(z, z, "l2").numpy(), atol=1e-4)  # its own plain Euclidean
    assert siamese.support_name.startswith("distance") and siamese.query_support_name == "pair distance"

    matching = episode_matrices(make_learner(LearnerConfig(method="matching"), 1, 16), episode)
    assert matching.kind == "similarity" and not matching.lower_is_closer
    assert matching.query_support.shape == (12, 8) and matching.query_support_name == "attention"
    np.testing.assert_allclose(matching.query_support.sum(1), 1.0, atol=1e-5)  # attention over the support
    assert "between embeddings" in matching.support_name

    maml = episode_matrices(make_learner(LearnerConfig(method="maml", inner_steps=1), 1, 16), episode)
    assert maml.kind == "logits" and maml.support_support.shape == (8, 8)


def test_most_confused_pairs_skip_the_diagonal_and_zeros() -> None:
    confusion = [[9, 1, 0], [4, 5, 2], [0, 0, 7]]
    assert most_confused(confusion) == [(1, 0, 4), (1, 2, 2), (0, 1, 1)]
    assert most_confused(confusion, k=1) == [(1, 0, 4)]
