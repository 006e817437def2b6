"""Catalogue, kind 3: bad inputs that once gave a silent wrong answer: a figure printed where there should be an error.

Infinite or absurd rates that train NaN weights to 'finished', checkpoints full of NaN or cast to another type
that still evaluate, config values of the wrong type that Python happens to accept (true as a learning rate,
"no" as a switch), and run.json values shown as figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.experiment import load_learner
from core.store import RunDir, read_checkpoint
from tests.reliability.conftest import GoodRun, Outcome, assert_refused, call_cli
from tests.reliability.test_tracebacks import assert_listed, damage_config, replace_checkpoint


def train(tmp_path: Path, *args: str) -> Outcome:
    return call_cli("train", "--device", "cpu", "--n-way", "5", "--q-query", "2", "--episodes", "3", *args, "--runs-dir", tmp_path / "runs")


@pytest.mark.parametrize(
    "flags,flag",
    [
        (["--method", "maml", "--inner-lr", "inf"], "--inner-lr"),
        (["--method", "maml", "--inner-lr", "1e300"], "--inner-lr"),
        (["--method", "triplet", "--margin", "inf"], "--margin"),
        (["--method", "siamese", "--margin", "1e300"], "--margin"),
    ],
    ids=["inner-lr-inf", "inner-lr-1e300", "margin-inf", "margin-1e300"],
)
def test_train_with_an_absurd_rate(tmp_path: Path, flags: list[str], flag: str):
    assert_refused(train(tmp_path, *flags), 2, flag)


def test_a_diverging_run_fails_with_the_reason_and_keeps_its_last_finite_checkpoint(tmp_path: Path):
    # plain SGD at the largest learning rate allowed blows up Conv-4's batch-norm statistics within ~20 steps
    flags = [
        "--optimizer",
        "sgd",
        "--lr",
        "10",
        "--schedule",
        "constant",
        "--episodes",
        "60",
        "--checkpoint-every",
        "5",
        "--val-every",
        "0",
    ]
    outcome = train(tmp_path, *flags)
    assert_refused(outcome, 2, "training diverged", "lower the learning rate", "--lr")
    run = RunDir(next((tmp_path / "runs").iterdir()))
    assert run.status() == "failed" and "diverged" in run.info()["error"]
    saved = run.checkpoints()
    assert saved and saved[-1].step < 60  # the NaN state was not saved
    for checkpoint in saved:
        tensors, _ = read_checkpoint(checkpoint.path)  # refuses any non-finite value
        assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    assert load_learner(run)[2].step == saved[-1].step
    assert run.metrics(), "the metrics up to the failure are kept"


def evaluate(run: Path) -> Outcome:
    return call_cli("eval", "--run", run, "--episodes", "5", "--n-way", "5")


CHECKPOINT_CHANGES = {
    "nan": lambda t: {k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in t.items()},
    "one-inf": lambda t: {k: (v.fill_(float("inf")) if "0.0.weight" in k else v) for k, v in t.items()},
    "int8": lambda t: {k: v.to(torch.int8) if v.is_floating_point() else v for k, v in t.items()},
    "float64": lambda t: {k: v.double() if v.is_floating_point() else v for k, v in t.items()},
    "float16": lambda t: {k: v.half() if v.is_floating_point() else v for k, v in t.items()},
    "bfloat16": lambda t: {k: v.bfloat16() if v.is_floating_point() else v for k, v in t.items()},
    "counts-as-float": lambda t: {k: v.float() for k, v in t.items()},
}


@pytest.mark.parametrize("change", list(CHECKPOINT_CHANGES))
def test_eval_of_a_changed_checkpoint(good_run: GoodRun, tmp_path: Path, change: str):
    run = good_run.copy(tmp_path)
    replace_checkpoint(run, CHECKPOINT_CHANGES[change])
    assert_refused(evaluate(run), 2, "step-0000004")


def test_eval_of_a_checkpoint_recording_another_image_size(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    replace_checkpoint(run, lambda t: t, lambda m: {**m, "input_shape": "1,32,32"})
    assert_refused(evaluate(run), 2, "1x32x32")


def test_init_from_a_nan_checkpoint(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path / "copy")
    replace_checkpoint(run, CHECKPOINT_CHANGES["nan"])
    checkpoint = sorted((run / "checkpoints").glob("step-*"))[-1]
    assert_refused(train(tmp_path, "--init-from", str(checkpoint)), 2, "--init-from", "not finite")


def test_predict_with_a_nan_checkpoint(good_run: GoodRun, tmp_path: Path):
    from PIL import Image

    run = good_run.copy(tmp_path / "copy")
    replace_checkpoint(run, CHECKPOINT_CHANGES["nan"])
    for c in ("a", "b"):
        (tmp_path / "support" / c).mkdir(parents=True)
        Image.new("L", (28, 28), 40 if c == "a" else 200).save(tmp_path / "support" / c / "x.png")
    (tmp_path / "query").mkdir()
    Image.new("L", (28, 28), 40).save(tmp_path / "query" / "q.png")
    done = call_cli("predict", "--run", run, "--support", tmp_path / "support", "--query", tmp_path / "query")
    assert_refused(done, 2, "not finite")
    assert done.out == ""  # no prediction printed


CONFIG_VALUES = {
    "lr-true": lambda c: c["train"].update(lr=True),
    "fce-no": lambda c: c["learner"].update(fce="no"),
    "rotations-false-text": lambda c: c["train"].update(rotations="false"),
    "first-order-one": lambda c: c["learner"].update(first_order=1),
    "recipe-number": lambda c: c.update(recipe=5),
    "episodes-float": lambda c: c["train"].update(episodes=4.0),
    "seed-beyond-64-bits": lambda c: c["train"].update(split_seed=2**64),
    "n-way-true": lambda c: c["train"]["eval_shape"].update(n_way=True),
}


@pytest.mark.parametrize("value", list(CONFIG_VALUES))
def test_config_json_value_python_would_accept(good_run: GoodRun, tmp_path: Path, value: str):
    run = good_run.copy(tmp_path)
    damage_config(run, CONFIG_VALUES[value])
    assert_refused(evaluate(run), 2, "config.json")


@pytest.mark.parametrize("literal", ["1e400", "Infinity", "-Infinity", "NaN"])
def test_config_json_non_finite_rate(good_run: GoodRun, tmp_path: Path, literal: str):
    run = good_run.copy(tmp_path)
    text = (run / "config.json").read_text()
    (run / "config.json").write_text(text.replace('"inner_lr": 0.05', f'"inner_lr": {literal}'))
    assert literal in (run / "config.json").read_text()
    assert_refused(evaluate(run), 2, "config.json")


@pytest.mark.parametrize(
    "info,status",
    [({"status": 5}, "unknown"), ({"status": "exploded"}, "unknown"), ({"status": ["finished"]}, "unknown"), ({"status": None}, "unknown")],
    ids=["number", "unknown-word", "list", "null"],
)
def test_run_json_status_of_the_wrong_kind(good_run: GoodRun, tmp_path: Path, info: dict, status: str):
    run = good_run.copy(tmp_path)
    (run / "run.json").write_text(json.dumps(info))
    assert RunDir(run).status() == status
    assert f" {status} " in assert_listed(run.parent, run.name)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "true", '"97%"'])
def test_run_json_accuracy_that_is_not_a_number(good_run: GoodRun, tmp_path: Path, value: str):
    run = good_run.copy(tmp_path)
    (run / "run.json").write_text(f'{{"status": "finished", "final_val_acc": {value}}}')
    assert "final_val_acc" not in RunDir(run).info()
    assert "%" not in assert_listed(run.parent, run.name)  # no accuracy shown rather than a wrong one
