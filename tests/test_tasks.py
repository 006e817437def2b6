"""Task embeddings, similarity, warm start and NMF of tasks, on tiny seeded data."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.cli import main
from core.config import ConfigError, EpisodeShape, LearnerConfig
from core.data.base import ImageSet
from core.episodes import EpisodeError, EpisodeSpec
from core.learners import make_learner
from core.tasks.draw import TaskDrawer, split_classes_within_groups, split_images
from core.tasks.embedding import TaskEncoder, metric_embeddings, parameter_embeddings, train_task_encoder
from core.tasks.features import ImageFeatures, cold_head, finetune, head_accuracy
from core.tasks.models import HeadModel, NetworkModel, adapt, make_task_model
from core.tasks.nmf import membership_matrix, task_nmf, top_features, top_labels
from core.tasks.similarity import cross_similarity, nearest_tasks, similarity_matrix
from core.tasks.study import StudyConfig
from core.tasks.warmstart import compare_starts, solve_tasks, transfer_head, warm_start
from tests.conftest import make_toy_set

SHAPE = EpisodeShape(4, 2, 3)


@pytest.fixture(scope="module")
def toy():
    return make_toy_set(n_classes=24, per_class=12, size=16, seed=1, groups=3)


@pytest.fixture(scope="module")
def features(toy):
    torch.manual_seed(0)
    return ImageFeatures(make_learner(LearnerConfig(method="protonet"), 1, 16), toy)


def pixel_features(image_set):
    """Normalised raw pixels: no training, so a test of the task tools alone."""
    return ImageFeatures(make_learner(LearnerConfig(method="pixel_nn"), 1, 16), image_set)


def relabelled(spec: EpisodeSpec, order: list[int]) -> EpisodeSpec:
    """The same task with its classes in another order and each class's support images reversed."""
    return EpisodeSpec(
        tuple(spec.class_ids[i] for i in order), tuple(spec.support[i][::-1] for i in order), tuple(spec.query[i] for i in order)
    )


def test_tasks_are_drawn_within_one_group_and_seeded(toy):
    a, b = TaskDrawer(toy, range(24), SHAPE, seed=3), TaskDrawer(toy, range(24), SHAPE, seed=3)
    tasks = a.draw_many(9)
    assert tasks == b.draw_many(9)
    for t in tasks:
        assert len({toy.class_groups[c] for c in t.class_ids}) == 1
        assert all(toy.labels[i] == c for c, rows in zip(t.class_ids * 2, t.support + t.query, strict=True) for i in rows)
    assert sorted({a.group_of(t) for t in tasks}) == a.groups  # groups taken in turn
    with pytest.raises(EpisodeError, match="use fewer classes per task"):
        TaskDrawer(toy, range(24), EpisodeShape(9, 1, 1))


def test_library_splits_are_disjoint(toy):
    head, tail = split_images(toy, range(24), 5)
    assert all(len(head[c]) == 5 and not set(head[c]) & set(tail[c]) for c in range(24))
    first, second = split_classes_within_groups(toy, range(24), seed=0)
    assert not set(first) & set(second) and sorted(first + second) == list(range(24))


@pytest.mark.parametrize("kind", ["metric", "parameter"])
def test_embeddings_ignore_support_order_and_class_labels(toy, features, kind):
    specs = TaskDrawer(toy, range(24), SHAPE, seed=0).draw_many(3)
    moved = [relabelled(s, [2, 0, 3, 1]) for s in specs]
    if kind == "metric":
        encoder = TaskEncoder(features.rows([0]).shape[1])
        embed = lambda tasks: metric_embeddings(encoder, features, tasks)
    else:
        embed = lambda tasks: parameter_embeddings(features, tasks, steps=3)
    torch.testing.assert_close(embed(moved), embed(specs), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(embed(specs[:1]), embed(specs[1:2]), atol=1e-3)  # yet tasks differ


def test_an_episode_and_its_spec_embed_alike(toy, features):
    spec = TaskDrawer(toy, range(24), SHAPE, seed=0).draw()
    episode = spec.build(toy)
    perm = torch.randperm(episode.support_y.numel(), generator=torch.Generator().manual_seed(0))
    shuffled = replace(episode, support_x=episode.support_x[perm], support_y=episode.support_y[perm])
    torch.testing.assert_close(
        parameter_embeddings(features, [shuffled], steps=2), parameter_embeddings(features, [spec], steps=2), atol=1e-5, rtol=1e-4
    )


def test_contrastive_training_brings_tasks_sharing_classes_closer():
    image_set = make_toy_set(n_classes=24, per_class=12, size=16, seed=2)  # no groups: related = shares a class
    features = pixel_features(image_set)
    drawer = TaskDrawer(image_set, range(24), SHAPE, seed=0)
    torch.manual_seed(0)
    encoder = TaskEncoder(256, hidden=64, out_dim=16)
    losses = train_task_encoder(encoder, features, drawer, steps=150, groups=4, per_group=4, lr=3e-3)
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    fresh = TaskDrawer(image_set, range(24), SHAPE, seed=99)
    anchors = [fresh.draw() for _ in range(30)]
    sharing = [fresh.draw(classes=a.class_ids[:2] + tuple(c for c in range(24) if c not in a.class_ids)[:2]) for a in anchors]
    disjoint = [fresh.draw(classes=tuple(c for c in range(24) if c not in a.class_ids)[-4:]) for a in anchors]
    e_a, e_s, e_d = (metric_embeddings(encoder, features, t) for t in (anchors, sharing, disjoint))
    close, far = (e_a * e_s).sum(1), (e_a * e_d).sum(1)
    assert close.mean() > far.mean() + 0.2 and (close > far).float().mean() > 0.8


def test_similarity_matrix_is_symmetric_with_unit_diagonal():
    e = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    s = similarity_matrix(e)
    assert torch.equal(s, s.T) and torch.equal(s.diagonal(), torch.ones(7))
    assert s.abs().max() <= 1 + 1e-6


def test_nearest_tasks_match_brute_force():
    g = torch.Generator().manual_seed(1)
    stored, new = torch.randn(20, 6, generator=g), torch.randn(4, 6, generator=g)
    index, sims = nearest_tasks(stored, new, k=3)
    for j in range(4):
        cos = [torch.dot(new[j], s).item() / (new[j].norm() * s.norm()).item() for s in stored]
        assert index[j].tolist() == sorted(range(20), key=lambda i: -cos[i])[:3]
        torch.testing.assert_close(sims[j], torch.tensor([cos[i] for i in index[j]]), atol=1e-5, rtol=1e-5)
    exclude = torch.zeros(4, 20, dtype=torch.bool)
    exclude[:, index[:, 0]] = True
    assert not set(nearest_tasks(stored, new, 3, exclude)[0].flatten().tolist()) & set(index[:, 0].tolist())
    with pytest.raises(ValueError, match="nearest"):
        nearest_tasks(stored, new, k=21)
    assert cross_similarity(new, stored).shape == (4, 20)


def test_transferred_head_follows_the_classes_not_their_labels():
    image_set = make_toy_set(n_classes=10, per_class=20, size=16, seed=3)
    features = pixel_features(image_set)
    drawer = TaskDrawer(image_set, range(10), EpisodeShape(5, 8, 1), seed=0)
    stored = solve_tasks(HeadModel(features, 5.0), features, [drawer.draw(classes=(0, 1, 2, 3, 4))], steps=50)
    new = TaskDrawer(image_set, range(10), EpisodeShape(5, 1, 10), seed=1).draw(classes=(3, 0, 4, 1, 2))
    head = transfer_head(features.prototypes(new), stored)
    assert head_accuracy(head, *features.query(new)) > 0.8  # right at step 0, so rows went to the right classes
    assert len({tuple(r.tolist()) for r in head["head.weight"]}) == 5  # one-to-one: no row taken twice
    torch.testing.assert_close(head["head.weight"].norm(dim=1), torch.ones(5))


def faint_set(n_classes: int = 10, per_class: int = 30, signal: float = 0.2, seed: int = 4) -> ImageSet:
    """Classes = random patterns barely above the noise: one image per class is a poor prototype, ten a good one."""
    g = torch.Generator().manual_seed(seed)
    patterns = (torch.rand(n_classes, 1, 16, 16, generator=g) > 0.5).float()
    noise = torch.rand(n_classes * per_class, 1, 16, 16, generator=g)
    images = ((signal * patterns.repeat_interleave(per_class, 0) + (1 - signal) * noise) * 255).to(torch.uint8)
    return ImageSet("faint", images, torch.arange(n_classes).repeat_interleave(per_class), tuple(f"c{i}" for i in range(n_classes)))


def test_warm_start_from_the_same_classes_beats_cold_start_at_one_step():
    image_set = faint_set()
    features = pixel_features(image_set)
    head, tail = split_images(image_set, range(10), 11)
    library = TaskDrawer(image_set, range(10), EpisodeShape(5, 10, 1), seed=0, images=head)
    stored_specs = [library.draw(classes=(0, 1, 2, 3, 4)), library.draw(classes=(5, 6, 7, 8, 9))]
    model = HeadModel(features, 5.0)
    stored = solve_tasks(model, features, stored_specs, steps=50)
    new_drawer = TaskDrawer(image_set, range(10), EpisodeShape(5, 1, 10), seed=1, images=tail)
    new = [new_drawer.draw(classes=s.class_ids) for s in stored_specs for _ in range(15)]
    embed = lambda tasks: torch.stack([features.prototypes(t).mean(0) for t in tasks])
    result = compare_starts(model, features, stored, embed(stored_specs), new, embed(new), k=1, steps=(0, 1, 5))
    (warm, _), (cold, _) = result.curve("warm"), result.curve("cold")
    assert cold[0] == pytest.approx(0.2)  # a zero head ties every class: chance
    assert warm[1] > cold[1] + 0.05 and warm[0] > 0.5
    gain, ci = result.gain()
    assert gain[1] - ci[1] > 0  # the paired 95% CI excludes no gain
    assert set(result.to_dict()["curves"]) == {"cold", "cold-random", "warm", "warm-random"}


def test_finetune_from_zero_reaches_the_support():
    z = torch.nn.functional.normalize(torch.randn(8, 5, generator=torch.Generator().manual_seed(0)), dim=1)
    y = torch.arange(4).repeat(2)
    heads = finetune(cold_head(4, 5), z, y, steps=30, lr=5.0)
    assert len(heads) == 31 and head_accuracy(heads[-1], z, y) == 1.0


@pytest.fixture(scope="module")
def fomaml_model(toy, features):
    torch.manual_seed(0)
    learner = make_learner(LearnerConfig(method="fomaml", inner_steps=3, inner_lr=0.1), 1, 16)
    return NetworkModel(learner).bind(features)


def test_the_network_models_cold_start_is_the_learners_own_adaptation(toy, fomaml_model):
    spec = TaskDrawer(toy, range(24), SHAPE, seed=0).draw()
    (xs, ys), (xq, _) = fomaml_model.data(spec.support), fomaml_model.data(spec.query)
    adapted = adapt(fomaml_model, fomaml_model.cold(4), xs, ys, 3)[-1]
    with torch.no_grad():
        expected = fomaml_model.learner(xs, ys, xq)
    torch.testing.assert_close(fomaml_model.logits(adapted, xq), expected)
    assert isinstance(make_task_model("auto", fomaml_model.learner, fomaml_model.features, 5.0), NetworkModel)


def test_a_warm_network_starts_from_its_neighbours_backbones(toy, features, fomaml_model):
    drawer = TaskDrawer(toy, range(24), SHAPE, seed=0)
    specs = [drawer.draw() for _ in range(3)]
    stored = solve_tasks(fomaml_model, features, specs, steps=2)
    cold = fomaml_model.cold(4)
    one = warm_start(fomaml_model, specs[0], features.prototypes(specs[0]), stored[:1], prior_weight=1.0)
    name = next(k for k, v in cold.items() if v.dim() == 4)  # a convolution's weights
    assert not torch.equal(stored[0].weights[name], cold[name])  # solving moved the backbone
    torch.testing.assert_close(one[name], stored[0].weights[name])
    both = warm_start(fomaml_model, specs[0], features.prototypes(specs[0]), stored[:2], prior_weight=1.0)
    torch.testing.assert_close(both[name], (stored[0].weights[name] + stored[1].weights[name]) / 2)
    assert one["head.weight"].shape == (4, fomaml_model.learner.feature_dim) and one["head.weight"].abs().sum() > 0
    assert isinstance(make_task_model("auto", make_learner(LearnerConfig(method="protonet"), 1, 16), features, 5.0), HeadModel)


def test_nmf_factors_recover_the_groups_of_a_constructed_example():
    rng = np.random.default_rng(0)
    groups = {"A": [0, 1, 2, 3, 4], "B": [5, 6, 7, 8, 9], "C": [10, 11, 12, 13, 14]}
    names = [f"c{i}" for i in range(15)]
    labels = [g for g in groups for _ in range(20)]
    specs = [EpisodeSpec(tuple(int(c) for c in rng.choice(groups[g], 3, replace=False)), ((0,),) * 3, ((0,),) * 3) for g in labels]
    x = membership_matrix(specs, range(15))
    result = task_nmf(x, names, n_factors=3, seed=0)
    assert (result.loadings >= 0).all() and (result.factors >= 0).all() and (result.reconstruction >= 0).all()
    assert result.error < task_nmf(x, names, n_factors=1).error
    tops = [f[0][0] for f in top_labels(result, labels, top=1)]
    assert sorted(tops) == ["A", "B", "C"]  # one factor per group
    for top_group, feats in zip(tops, top_features(result, top=3), strict=True):
        assert all(int(name[1:]) in groups[top_group] for name, _ in feats)


def test_nmf_rejects_negative_features():
    with pytest.raises(ValueError, match="non-negative"):
        task_nmf(np.array([[1.0, -1.0], [0.0, 1.0]]), ["a", "b"], 1)


def test_study_settings_are_validated():
    with pytest.raises(ConfigError, match="library"):
        StudyConfig(library="nope")
    with pytest.raises(ConfigError, match="k=50"):
        StudyConfig(k=50, stored_tasks=10)


def test_cli_runs_a_small_study_and_writes_its_figures(tmp_path, capsys):
    main(
        [*"train --dataset glyphs --method pixel_nn --episodes 1 --n-way 5 --q-query 2 --val-every 0".split(), "--runs-dir", str(tmp_path)]
    )
    run = next(tmp_path.iterdir())
    capsys.readouterr()
    small = "--stored-tasks 20 --new-tasks 12 --k 3 --encoder-steps 5 --solve-steps 5 --nmf-tasks 30 --q-query 3".split()
    main(["tasks", "--run", str(run), "--steps", "0,1,2", *small])
    out = capsys.readouterr().out
    assert "warm - cold" in out and "NMF of 30 tasks" in out
    figures = json.loads((run / "tasks-images-metric-seed0.json").read_text())
    assert figures["warm_start"]["steps"] == [0, 1, 2] and figures["warm_start"]["tasks"] == 12
    with pytest.raises(SystemExit):
        main(["tasks", "--run", str(run), "--steps", "one"])
