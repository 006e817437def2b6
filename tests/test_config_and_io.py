"""Configs validate and round-trip; atomic writes keep the old file on failure; core stays UI-free."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest

from core.atomic import StorageError, atomic_write, atomic_write_text
from core.config import ConfigError, EpisodeShape, LearnerConfig, RunConfig, TrainConfig


def test_run_config_round_trip():
    config = RunConfig(LearnerConfig(method="protonet", distance="cosine"), TrainConfig(episodes=7, train_shape=EpisodeShape(10, 5, 2)))
    assert RunConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: EpisodeShape(1, 1, 1), "at least 2 classes"),
        (lambda: EpisodeShape(5, 0, 1), "at least 1 support"),
        (lambda: LearnerConfig(method="nope"), "unknown method 'nope'; choose one of"),
        (lambda: LearnerConfig(distance="manhattan"), "unknown distance"),
        (lambda: TrainConfig(dataset="imagenet"), "unknown dataset 'imagenet'"),
        (lambda: TrainConfig(lr=0), "learning rate"),
        (lambda: RunConfig.from_dict({"learner": {"bogus": 1}, "train": {}}), "unknown LearnerConfig settings: bogus"),
        (lambda: RunConfig.from_dict({"weights": []}), "not a MetaScope run config"),
    ],
)
def test_bad_settings_are_named(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


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
