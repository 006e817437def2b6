"""Lake-like training episodes: classes from one alphabet, support by one drawer, queries by others."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.augment import AugmentedSampler
from core.config import EpisodeShape, RunConfig, TrainConfig
from core.data.base import DataError, ImageSet
from core.data.omniglot import load_omniglot
from core.data.splits import split_classes
from core.episodes import ClassPool, EpisodeSampler
from core.experiment import preflight
from core.hard_episodes import HardEpisodeSampler, training_sampler


@pytest.fixture(scope="module")
def train_pool(omniglot_dir: Path) -> ClassPool:
    data = load_omniglot(omniglot_dir)
    return ClassPool(data, split_classes(data).train, rotations=True)


def _groups(pool: ClassPool, episode) -> set[tuple[str, int]]:
    groups = pool.image_set.class_groups
    return {(groups[c], r) for c, r in zip(episode.class_ids, episode.rotations, strict=True)}


def test_within_share_one_keeps_every_episode_in_one_rotated_alphabet(train_pool: ClassPool):
    sampler = HardEpisodeSampler(train_pool, 20, 1, 3, seed=0, within_share=1.0)
    episodes = [sampler.sample() for _ in range(40)]
    assert all(len(_groups(train_pool, ep)) == 1 for ep in episodes)
    assert len({next(iter(_groups(train_pool, ep))) for ep in episodes}) > 5  # many alphabets and turns visited
    assert all(len(set(ep.class_ids)) == 20 for ep in episodes)  # 20 distinct characters of that alphabet


def test_within_share_half_mixes(train_pool: ClassPool):
    sampler = HardEpisodeSampler(train_pool, 20, 1, 3, seed=0, within_share=0.5)
    within = sum(len(_groups(train_pool, sampler.sample())) == 1 for _ in range(100))
    assert 30 < within < 70


def test_split_drawers_puts_one_drawer_on_the_support_and_none_of_it_in_the_queries(train_pool: ClassPool):
    drawers = train_pool.image_set.drawers
    sampler = HardEpisodeSampler(train_pool, 10, 1, 5, seed=1, split_drawers=True)
    for _ in range(30):
        ep = sampler.sample()
        support_drawers = set(drawers[ep.support_idx].tolist())
        assert len(support_drawers) == 1
        assert not support_drawers & set(drawers[ep.query_idx].tolist())
        assert [train_pool.image_set.labels[i].item() for i in ep.query_idx] == [ep.class_ids[j] for j in ep.query_y.tolist()]


def test_hard_sampler_is_seeded(train_pool: ClassPool):
    a, b = (HardEpisodeSampler(train_pool, 20, 1, 2, seed=4, within_share=0.5, split_drawers=True) for _ in range(2))
    for _ in range(5):
        x, y = a.sample(), b.sample()
        assert torch.equal(x.support_idx, y.support_idx) and torch.equal(x.query_idx, y.query_idx)


def test_data_without_groups_or_drawers_is_refused(toy_set: ImageSet):
    pool = ClassPool(toy_set, list(range(10)))
    with pytest.raises(DataError, match="has no alphabets"):
        HardEpisodeSampler(pool, 5, 1, 2, within_share=1.0)
    with pytest.raises(DataError, match="does not say who drew"):
        HardEpisodeSampler(pool, 5, 1, 2, split_drawers=True)


def test_training_sampler_builds_what_the_config_asks(toy_set: ImageSet):
    pool = ClassPool(toy_set, list(range(10)))
    shape = EpisodeShape(5, 1, 2)
    assert type(training_sampler(pool, TrainConfig(train_shape=shape))) is EpisodeSampler
    augmented = training_sampler(pool, TrainConfig(train_shape=shape, aug_rotation=10))
    assert isinstance(augmented, AugmentedSampler) and augmented.shape == shape and augmented.pool is pool


def test_preflight_refuses_split_drawers_on_data_without_drawers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("METASCOPE_CACHE", str(tmp_path))
    with pytest.raises(DataError, match="does not say who drew each image") as refused:  # before any run folder exists
        preflight(RunConfig.from_flat({"dataset": "glyphs", "split_drawers": True, "n_way": 5, "q_query": 2}))
    assert refused.value.setting == "split_drawers"
