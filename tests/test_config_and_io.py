"""Configs validate and round-trip; atomic writes keep the old file on failure; core stays UI-free."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest

from core.atomic import StorageError, atomic_write, atomic_write_text
from core.config import ConfigError, EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.data.base import DataError
from core.experiment import preflight
from core.learners import make_learner
from core.recipes import RECIPES, with_recipe


def test_run_config_round_trip():
    config = RunConfig(LearnerConfig(method="protonet", distance="cosine"), TrainConfig(episodes=7, train_shape=EpisodeShape(10, 5, 2)))
    assert RunConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: EpisodeShape(1, 1, 1), "at least 2 classes"),
        (lambda: EpisodeShape(5, 0, 1), "at least 1 support"),
        (lambda: make_learner(LearnerConfig(method="nope"), 1, 28), "unknown learner 'nope'; choose one of: protonet"),
        (lambda: preflight(RunConfig(LearnerConfig(method="nope"))), "unknown learner 'nope'"),
        (lambda: preflight(RunConfig(LearnerConfig(backbone="vgg"))), "unknown backbone 'vgg'; choose one of: conv4, conv4-"),
        (lambda: LearnerConfig(distance="manhattan"), "unknown distance"),
        (lambda: TrainConfig(lr=0), "learning rate"),
        (lambda: RunConfig.from_flat({"n_way": 5, "nosuch": 1}), "unknown settings: nosuch"),
        (lambda: with_recipe("nope", {}), "unknown recipe 'nope'; choose one of: protonet"),
        (lambda: RunConfig.from_dict({"learner": {"bogus": 1}, "train": {}}), "unknown LearnerConfig settings: bogus"),
        (lambda: RunConfig.from_dict({"weights": []}), "not a MetaScope run config"),
    ],
)
def test_bad_settings_are_named(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_unknown_dataset_is_named_before_anything_loads():
    with pytest.raises(DataError, match="unknown dataset 'imagenet'; choose one of: glyphs") as caught:
        preflight(RunConfig(train=TrainConfig(dataset="imagenet")))
    assert caught.value.setting == "dataset"


def test_settings_name_the_field_to_change():
    for build, setting in (
        (lambda: EpisodeShape(1, 1, 1), "n_way"),
        (lambda: TrainConfig(lr=0), "lr"),
        (lambda: LearnerConfig(inner_lr=0), "inner_lr"),
    ):
        with pytest.raises(ConfigError) as caught:
            build()
        assert caught.value.setting == setting
        assert setting not in str(caught.value)  # worded for any caller: no code names in the message


def test_flat_values_round_trip_and_recipes_apply_under_the_given_values():
    shapes = {"train_shape": EpisodeShape(10, 5, 2), "eval_shape": EpisodeShape(7, 5, 3)}
    config = RunConfig(LearnerConfig(method="matching", fce=True), TrainConfig(episodes=7, lr=0.01, **shapes))
    assert RunConfig.from_flat(config.to_flat()) == config
    assert RunConfig.from_flat({}) == RunConfig()
    made = RunConfig.from_flat(with_recipe("protonet", {"episodes": 20, "seed": 3}))
    assert made.train.train_shape == EpisodeShape(30, 1, 5) and made.train.lr == 0.002  # from the recipe
    assert made.train.episodes == 20 and made.train.seed == 3 and made.recipe == "protonet"  # given values win
    assert RunConfig.from_dict(made.to_dict()) == made  # the recipe's name is saved with the run
    assert made.train.eval_shape == EpisodeShape(5, 1, 15)  # validation: 5-way, 15 queries, the training K
    for recipe in RECIPES.values():
        RunConfig.from_flat(with_recipe(recipe.name, {}))  # every recipe is a valid config


def test_lake_recipe_sets_its_values_and_yields_to_given_ones():
    lake = RunConfig.from_flat(with_recipe("lake", {"dataset": "omniglot"}))
    assert (lake.learner.method, lake.learner.backbone, lake.train.train_shape) == ("protonet", "conv4-global", EpisodeShape(30, 1, 5))
    assert (lake.train.aug_rotation, lake.train.aug_shear, lake.train.aug_scale, lake.train.aug_translate, lake.train.aug_elastic) == (
        10.0, 10.0, 0.1, 0.05, 0.03,
    )  # fmt: skip
    assert lake.train.aug_thickness == 0 and lake.train.within_alphabet == 0 and lake.train.val_every == 0 and lake.train.lr == 0.002
    assert (lake.train.image_size, lake.train.episodes) == (42, 2500)
    given = RunConfig.from_flat(with_recipe("lake", {"aug_elastic": 0.0, "n_way": 20, "backbone": "conv4", "image_size": 28}))
    assert given.train.aug_elastic == 0 and given.train.train_shape.n_way == 20 and given.learner.backbone == "conv4"
    assert given.train.image_size == 28
    assert given.train.aug_rotation == 10.0 and given.recipe == "lake"  # the rest still from the recipe
    assert RunConfig.from_dict(json.loads(given.to_json())) == given  # saved with the run, name and values


def test_atomic_write_keeps_previous_file_when_the_disk_is_full(tmp_path):
    target = tmp_path / "metrics.jsonl"
    atomic_write_text(target, "old")

    def full_disk(tmp: Path) -> None:
        tmp.write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError, match="disk full while writing .*metrics.jsonl"):
        atomic_write(target, full_disk)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temporary file left behind


def test_core_never_imports_the_ui():
    core = Path(__file__).resolve().parents[1] / "core"
    pattern = re.compile(r"^\s*(import|from)\s+(streamlit|plotly)\b", re.MULTILINE)
    offenders = [str(p) for p in core.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
