"""Named benchmarks from the command line: train with the dataset's defaults; bench where the data is, a clear line where not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.bench import BenchSizes, run_benchmark
from tests.test_benchmarks import _split_folders

ROOT = Path(__file__).resolve().parents[1]
TINY = BenchSizes(window=3, train_windows=1, common_train_windows=1, eval_episodes=10, common_eval_episodes=4, check_episodes=4,
                  projection_points=0, large_points=0, matmul_seconds=0.05)  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=ROOT, env={**os.environ}, timeout=600)


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """miniImageNet in class folders, 16 tiny images a class: enough for 5-way 1-shot 15-query episodes."""
    return _split_folders(tmp_path_factory.mktemp("bench") / "mini", "mini_imagenet", per_class=16)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "--dataset", "mini_imagenet", "--data-dir", "/no/such/mini"], "cannot bench on mini_imagenet: mini_imagenet folder"),
        (["bench", "--dataset", "cub"], "cannot bench on cub: cub needs a data folder: the CUB_200_2011 folder"),
        (
            ["train", "--dataset", "tiered_imagenet", "--data-dir", "/no/such/tiered"],
            "tiered_imagenet folder /no/such/tiered does not exist",
        ),
    ],
)
def test_absent_benchmark_data_is_one_clear_line(args: list[str], message: str):
    result = cli(*args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_train_on_a_benchmark_uses_its_size_and_split(mini: Path, tmp_path: Path):
    result = cli(
        "train", "--dataset", "mini_imagenet", "--data-dir", str(mini), "--episodes", "2", "--n-way", "5", "--q-query", "2",
        "--val-every", "0", "--no-rotations", "--runs-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = json.loads((Path(result.stdout.strip().splitlines()[-1]) / "config.json").read_text())
    assert config["train"]["image_size"] == 84 and config["train"]["dataset"] == "mini_imagenet"
    assert "do not have the benchmark's 600 images" in result.stderr  # the tiny tree is named for what it is


@pytest.mark.slow
def test_bench_runs_on_a_named_benchmark_in_colour(mini: Path):
    # 32 pixels to keep CI short: the 84-pixel path is the same code (its backbones: test_benchmarks.py)
    out = run_benchmark(sizes=TINY, threads=1, projections=False, dataset="mini_imagenet", data_dir=str(mini), image_size=32)
    assert out["dataset"] == "mini_imagenet (1600 images, (3, 32, 32))"
    for key in ("train_eps", "train_eps_common", "train_eps_conv4", "train_eps_resnet12"):
        assert out[key] > 0, key
    assert out["eval_acc_check_common"] == pytest.approx(out["eval_acc_check_fast"], abs=0.01)  # the same normalised floats
