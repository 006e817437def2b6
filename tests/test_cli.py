"""The command line: wrong arguments give one line and exit 2; train -> eval -> predict end to end."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=cwd, env={**os.environ}, timeout=600)


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--n-way", "five"], "argument --n-way: invalid int value: 'five'"),
        (["train", "--method", "nope"], "argument --method: invalid choice: 'nope' (choose from 'protonet'"),
        (
            ["train", "--dataset", "folder"],
            "the folder dataset needs a data folder: a directory with one sub-folder of images per class (--data-dir)",
        ),
        (["train", "--dataset", "folder", "--data-dir", "/no/such/dir"], "/no/such/dir"),
        (["train", "--n-way", "1"], "an episode needs at least 2 classes (got 1) (--n-way)"),
        (["train", "--nosuch"], "unrecognized arguments: --nosuch (see python -m core train --help)"),
        (["train", "--recipe", "protonet", "--lr", "0"], "the learning rate must be above 0 and at most 10 (got 0.0) (--lr)"),
        (["eval", "--run", "/no/such/run"], "is not a MetaScope run"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_wrong_arguments_give_one_line_and_exit_2(args, message):
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_too_many_ways_for_the_split_is_named(tmp_path):
    result = cli("train", "--dataset", "glyphs", "--n-way", "5000", "--runs-dir", str(tmp_path))
    assert result.returncode == 2
    assert "5000 classes per episode, but this split has only" in result.stderr and result.stderr.strip().endswith("(--n-way)")
    assert not any(tmp_path.iterdir())  # nothing half-made is left behind


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    runs = tmp_path_factory.mktemp("runs")
    result = cli(
        "train", "--dataset", "glyphs", "--method", "protonet", "--n-way", "5", "--k-shot", "1", "--q-query", "5",
        "--episodes", "30", "--seed", "0", "--runs-dir", str(runs), "--val-every", "15", "--val-episodes", "10",
    )  # fmt: skip
    return result, runs


def test_train_eval_round_trip(trained):
    trained, runs = trained
    assert trained.returncode == 0, trained.stderr
    run_dir = Path(trained.stdout.strip().splitlines()[-1])
    assert run_dir.parent == runs and (run_dir / "config.json").exists()
    assert "loss" in trained.stderr  # the progress bar shows live loss
    evaluated = cli("eval", "--run", str(run_dir), "--n-way", "5", "--k-shot", "1", "--episodes", "50")
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith("accuracy: ") and "±" in evaluated.stdout
    figures = json.loads((run_dir / "eval-test-5w1s.json").read_text())
    assert figures["episodes"] == 50 and len(figures["confusion"]) == len(figures["class_names"])


def test_lake_protocol_on_data_without_drawers_is_one_line(trained):
    trained, _ = trained
    run_dir = trained.stdout.strip().splitlines()[-1]
    refused = cli("eval", "--run", run_dir, "--protocol", "lake")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "needs alphabet and drawer information" in refused.stderr


def test_lake_protocol_prints_the_error_and_stores_it(omniglot_dir, tmp_path):
    trained = cli(
        "train", "--dataset", "omniglot", "--data-dir", str(omniglot_dir), "--recipe", "lake", "--n-way", "5", "--q-query", "2",
        "--episodes", "3", "--aug-rotation", "20", "--within-alphabet", "0.5", "--split-drawers", "--runs-dir", str(tmp_path),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    run_dir = Path(trained.stdout.strip().splitlines()[-1])
    saved = json.loads((run_dir / "config.json").read_text())
    train = saved["train"]
    assert saved["recipe"] == "lake" and saved["learner"]["backbone"] == "conv4-global" and train["aug_elastic"] == 0.03  # the recipe's
    assert train["image_size"] == 42  # the recipe's, not the dataset's default (the command gives no --image-size)
    assert train["aug_rotation"] == 20 and train["train_shape"]["n_way"] == 5 and train["episodes"] == 3  # the flags given beside it
    assert train["within_alphabet"] == 0.5 and train["split_drawers"] is True
    evaluated = cli("eval", "--run", str(run_dir), "--protocol", "lake", "--episodes", "30")
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith("error: ") and "±" in evaluated.stdout and "30 Lake episodes" in evaluated.stdout
    figures = json.loads((run_dir / "eval-lake-test.json").read_text())
    assert figures["protocol"] == "lake" and figures["episodes"] == 30 and figures["n_way"] == 20
    assert f"error: {figures['error']:.2f} ± {figures['ci95']:.2f}" in evaluated.stdout
    aligned = cli("eval", "--run", str(run_dir), "--protocol", "lake", "--episodes", "30", "--tta", "2", "--tta-strength", "1.5", "--align")
    assert aligned.returncode == 0, aligned.stderr
    assert json.loads((run_dir / "eval-lake-test-tta2x1.5-align.json").read_text())["episodes"] == 30
    refused = cli("eval", "--run", str(run_dir), "--protocol", "lake", "--episodes", "30", "--align")
    assert refused.returncode != 0 and refused.stderr.strip().splitlines()[-1].startswith("error: align picks the best-aligned")


def _write_png(image, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image[0].numpy()).save(path)


def test_predict_classifies_query_images_from_a_support_folder(trained, tmp_path):
    from core.data.registry import load_dataset

    result, _ = trained
    run_dir = result.stdout.strip().splitlines()[-1]
    images = load_dataset("glyphs")
    classes = [0, 1, 2, 3]
    for c in classes:
        first = int((images.labels == c).nonzero()[0])
        _write_png(images.images[first], tmp_path / "support" / f"class,{c}" / "a.png")  # a comma: CSV quoting
        # the support image itself must come back as its own class
        _write_png(images.images[first], tmp_path / "query" / f"copy{c}.png")
    predicted = cli("predict", "--run", run_dir, "--support", str(tmp_path / "support"), "--query", str(tmp_path / "query"))
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.strip().splitlines()
    assert lines[0] == "query,predicted_class,score" and len(lines) == 1 + len(classes)
    for c, line in zip(classes, lines[1:], strict=True):
        name, rest = line.split(",", 1)
        assert name == f"copy{c}.png" and rest.startswith(f'"class,{c}",')
        assert 0.25 < float(rest.rsplit(",", 1)[1]) <= 1.0


def test_predict_names_a_corrupt_image(trained, tmp_path):
    result, _ = trained
    run_dir = result.stdout.strip().splitlines()[-1]
    for c in ("a", "b"):
        (tmp_path / "support" / c).mkdir(parents=True)
        (tmp_path / "support" / c / "x.png").write_bytes(b"not a png")
    (tmp_path / "query").mkdir()
    (tmp_path / "query" / "q.png").write_bytes(b"not a png")
    predicted = cli("predict", "--run", run_dir, "--support", str(tmp_path / "support"), "--query", str(tmp_path / "query"))
    assert predicted.returncode == 2 and "Traceback" not in predicted.stderr
    assert "cannot read image" in predicted.stderr and "x.png" in predicted.stderr


def test_every_flag_of_every_command_says_its_default_or_that_it_is_required():
    from core.cli import build_parser, commands

    for name, command in commands(build_parser()).items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and ("(default: " in action.help or action.help.endswith("(required)")), flag
            if action.choices is not None:  # argparse shows them in the flag's line of --help
                line = command.format_help()
                assert all(str(choice) in line for choice in action.choices), flag
    train = commands(build_parser())["train"].format_help()
    assert "--precision {auto,fp32,bf16}" in train and "else fp32 (default: auto)" in " ".join(train.split())


@pytest.mark.parametrize("command", ["train", "eval", "predict", "download", "bench", "tasks"])
def test_an_unknown_flag_points_to_its_commands_help_even_before_a_missing_required_one(command, capsys):
    from core.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([command, "--nosuch", "1"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: unrecognized arguments: --nosuch (see python -m core {command} --help)"


def test_the_progress_bar_says_when_it_counts_steps_of_several_episodes(capsys):
    from core.training.progress import ProgressBar

    for meta_batch, said in ((1, "ep"), (4, "step")):
        bar = ProgressBar(10, meta_batch)
        bar.on_log(None, {"step": 5, "loss": 1.0, "train_acc": 0.5})
        bar.on_end(None, "finished")
        shown = capsys.readouterr().err
        assert "5/10" in shown and (f"{said}/s" in shown or f"s/{said}" in shown), shown
        assert ("steps of 4 episodes" in shown) == (meta_batch == 4)
