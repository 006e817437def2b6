"""Catalogue, kind 1: bad inputs that once ended in a traceback. Each must end in one line and the right exit status.

Flags of every command, run folders whose files hold the wrong things, checkpoints of another learner, runs
folders that cannot take a run, and names that are not UTF-8.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.store import RunDir, RunStore
from tests.reliability.conftest import GoodRun, Outcome, assert_refused, call_cli, run_process

BIG = str(10**30)
BEYOND_64_BITS = str(2**64)


def train(tmp_path: Path, *args: str) -> Outcome:
    """`train ARGS` on the built-in glyphs into tmp_path/runs; asserts no run folder was left behind by a refusal."""
    outcome = call_cli("train", "--device", "cpu", "--n-way", "5", "--q-query", "2", *args, "--runs-dir", str(tmp_path / "runs"))
    if outcome.code != 0:
        assert not RunStore(tmp_path / "runs").runs(), "a refused run left a run folder behind"
    return outcome


# (id, flags, the flag the message must name)
TRAIN_FLAGS = [
    ("seed-beyond-64-bits", ["--seed", BEYOND_64_BITS], "--seed"),
    ("seed-negative", ["--seed", "-1"], "--seed"),
    ("device-cuda-abc", ["--device", "cuda:abc"], "--device"),
    ("device-cuda-colon", ["--device", "cuda:"], "--device"),
    ("device-cuda-negative", ["--device", "cuda:-1"], "--device"),
    ("device-cuda-two-indices", ["--device", "cuda:0:1"], "--device"),
    ("device-cuda-unicode-digit", ["--device", "cuda:\u0661"], "--device"),
    ("device-cuda-99", ["--device", "cuda:99"], "--device"),
    ("device-mps", ["--device", "mps"], "--device"),
    ("image-size-8-conv4", ["--image-size", "8"], "--image-size"),
    ("image-size-15-conv4", ["--image-size", "15"], "--image-size"),
    ("image-size-huge", ["--image-size", BIG], "--image-size"),
    ("n-way-huge", ["--n-way", BIG], "--n-way"),
    ("k-shot-huge", ["--k-shot", BIG], "--k-shot"),
    ("q-query-huge", ["--q-query", BIG], "--q-query"),
    ("eval-n-way-huge", ["--eval-n-way", BIG, "--episodes", "1"], "--eval-n-way"),
    ("checkpoint-every-beyond-64-bits", ["--checkpoint-every", BEYOND_64_BITS, "--episodes", "1"], "--checkpoint-every"),
    ("val-every-beyond-64-bits", ["--val-every", BEYOND_64_BITS, "--episodes", "1"], "--val-every"),
    ("inner-steps-huge", ["--method", "maml", "--inner-steps", BIG], "--inner-steps"),
    ("relation-hidden-beyond-64-bits", ["--method", "relation", "--relation-hidden", BEYOND_64_BITS], "--relation-hidden"),
    ("hidden-zero", ["--method", "blackbox", "--hidden", "0"], "--hidden"),
    ("lr-nan", ["--lr", "nan"], "--lr"),
    ("lr-minus-inf", ["--lr", "-inf"], "--lr"),
    ("margin-nan", ["--method", "triplet", "--margin", "nan"], "--margin"),
    ("n-way-word", ["--n-way", "five"], "--n-way"),
    ("episodes-float", ["--episodes", "1.5"], "--episodes"),
    ("recipe-unknown", ["--recipe", "nope"], "--recipe"),
]


@pytest.mark.parametrize("flags,flag", [pytest.param(f, flag, id=i) for i, f, flag in TRAIN_FLAGS])
def test_train_flag(tmp_path: Path, flags: list[str], flag: str):
    assert_refused(train(tmp_path, *flags), 2, flag)


def test_runs_dir_is_a_file(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    assert_refused(call_cli("train", "--runs-dir", tmp_path / "file"), 2, "--runs-dir", "is a file")


def test_runs_dir_inside_a_file(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    assert_refused(call_cli("train", "--runs-dir", tmp_path / "file" / "runs"), 2, "--runs-dir")


def test_runs_dir_is_a_fifo(tmp_path: Path):
    os.mkfifo(tmp_path / "fifo")
    assert_refused(call_cli("train", "--runs-dir", tmp_path / "fifo"), 2, "--runs-dir")


def test_runs_dir_is_a_symlink_loop(tmp_path: Path):
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    assert_refused(call_cli("train", "--runs-dir", tmp_path / "loop"), 2, "--runs-dir")


def test_runs_dir_that_cannot_be_created(tmp_path: Path):
    assert_refused(call_cli("train", "--runs-dir", "/proc/self/metascope-runs"), 2, "--runs-dir")


def test_runs_dir_empty(tmp_path: Path):
    assert_refused(call_cli("train", "--runs-dir", ""), 2, "--runs-dir")


def test_runs_dir_read_only(read_only_dir: Path):
    assert_refused(call_cli("train", "--runs-dir", read_only_dir / "runs"), 2, "--runs-dir")


def test_runs_dir_not_writable(tmp_path: Path):
    if os.geteuid() == 0:
        pytest.skip("root writes through folder permissions; the read-only mount case covers it here")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert_refused(call_cli("train", "--runs-dir", locked), 2, "--runs-dir", "cannot write")


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A folder on a read-only mount (root), else one without write permission (others)."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o500)
        yield target
        target.chmod(0o700)
        return
    if os.system(f"mount -t tmpfs -o ro,size=64k tmpfs {target} 2>/dev/null") != 0:
        pytest.skip("mounting a read-only tmpfs is not permitted here")
    try:
        yield target
    finally:
        os.system(f"umount {target}")


# --init-from: refused before a run folder exists, whatever it points at


def test_init_from_a_missing_file(tmp_path: Path):
    assert_refused(train(tmp_path, "--init-from", str(tmp_path / "no.safetensors")), 2, "--init-from")


def test_init_from_a_text_file(tmp_path: Path, good_run: GoodRun):
    fake = good_run.copy(tmp_path / "copy") / "checkpoints" / "step-0000002.safetensors"
    fake.write_text("not a checkpoint")
    assert_refused(train(tmp_path, "--init-from", str(fake)), 2, "--init-from")


def test_init_from_a_folder(tmp_path: Path, good_run: GoodRun):
    assert_refused(train(tmp_path, "--init-from", str(good_run.path / "checkpoints")), 2, "--init-from")


@pytest.mark.parametrize("flags", [["--method", "relation"], ["--backbone", "resnet12"], ["--method", "maml"]], ids=lambda f: f[1])
def test_init_from_a_checkpoint_of_another_learner(tmp_path: Path, good_run: GoodRun, flags: list[str]):
    assert_refused(train(tmp_path, *flags, "--init-from", str(good_run.checkpoint())), 2, "--init-from", "protonet")


# eval / bench / predict / download / tasks flags


def evaluate(run: Path, *flags: str) -> Outcome:
    return call_cli("eval", "--run", run, "--episodes", "5", "--n-way", "5", *flags)


@pytest.mark.parametrize(
    "flags,flag",
    [
        (["--episodes", "0"], "--episodes"),
        (["--episodes", "-5"], "--episodes"),
        (["--seed", BEYOND_64_BITS], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--n-way", BIG], "--n-way"),
        (["--k-shot", "0"], "--k-shot"),
        (["--q-query", BEYOND_64_BITS], "--q-query"),
        (["--checkpoint", "-1"], "--checkpoint"),
        (["--checkpoint", BIG], "--checkpoint"),
        (["--checkpoint", "999"], "999"),
    ],
    ids=lambda x: x if isinstance(x, str) else "=".join(x),
)
def test_eval_flag(good_run: GoodRun, flags: list[str], flag: str):
    assert_refused(evaluate(good_run.path, *flags), 2, flag)


def test_eval_of_an_empty_run_path():
    assert_refused(call_cli("eval", "--run", ""), 2, "--run")


def test_eval_of_a_file(tmp_path: Path):
    (tmp_path / "f").write_text("{}")
    assert_refused(evaluate(tmp_path / "f"), 2, "not a MetaScope run")


@pytest.mark.parametrize("threads", ["0", "-1", BIG])
def test_bench_threads(threads: str):
    assert_refused(call_cli("bench", "--quick", "--threads", threads), 2, "--threads")


@pytest.mark.parametrize("size", ["0", BIG])
def test_download_image_size(size: str, tmp_path: Path):
    assert_refused(call_cli("download", "omniglot", "--image-size", size, "--data-dir", tmp_path), 2, "--image-size")


@pytest.mark.parametrize(
    "flags",
    [["--seed", BEYOND_64_BITS], ["--lr", "inf"], ["--nmf-factors", BIG], ["--k", "0"], ["--steps", "1,x"], ["--prior-weight", "nan"]],
    ids=lambda f: f[0],
)
def test_tasks_flag(good_run: GoodRun, flags: list[str]):
    assert_refused(call_cli("tasks", "--run", good_run.path, *flags), 2)


def test_predict_support_is_a_file(good_run: GoodRun, tmp_path: Path):
    (tmp_path / "f").write_text("x")
    assert_refused(call_cli("predict", "--run", good_run.path, "--support", tmp_path / "f", "--query", tmp_path), 2, "not a directory")


# run folders holding the wrong things: eval must refuse the run in one line


def damage_config(run: Path, change) -> None:
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))


CONFIG_DAMAGE = {
    "image-size-float": lambda c: c["train"].update(image_size=28.0),
    "device-number": lambda c: c["train"].update(device=7),
    "method-list": lambda c: c["learner"].update(method=["protonet"]),
    "data-dir-number": lambda c: c["train"].update(data_dir=5),
    "data-dir-nul": lambda c: c["train"].update(data_dir="a\0b"),
    "split-seed-negative": lambda c: c["train"].update(split_seed=-1),
    "episodes-string": lambda c: c["train"].update(episodes="100"),
    "train-shape-list": lambda c: c["train"].update(train_shape=[5, 1, 2]),
    "learner-list": lambda c: c.update(learner=[]),
    "unknown-key": lambda c: c["train"].update(colour="red"),
    "no-train": lambda c: c.pop("train"),
}


@pytest.mark.parametrize("damage", list(CONFIG_DAMAGE))
def test_config_json_with_wrong_types(good_run: GoodRun, tmp_path: Path, damage: str):
    run = good_run.copy(tmp_path)
    damage_config(run, CONFIG_DAMAGE[damage])
    assert_refused(evaluate(run), 2, "config.json")


CONFIG_FILES = {
    "a-list": b"[]",
    "a-string": b'"protonet"',
    "null": b"null",
    "empty": b"",
    "invalid-utf8": b'{"learner": {"method": "proto\xff\xfenet"}}',
    "nested-100000-deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("content", list(CONFIG_FILES))
def test_config_json_content(good_run: GoodRun, tmp_path: Path, content: str):
    run = good_run.copy(tmp_path)
    (run / "config.json").write_bytes(CONFIG_FILES[content])
    assert_refused(evaluate(run), 2, "config.json")


def test_config_json_is_a_directory(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    (run / "config.json").unlink()
    (run / "config.json").mkdir()
    assert_refused(evaluate(run), 2, "config.json")


def test_config_json_is_a_symlink_loop(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    (run / "config.json").unlink()
    os.symlink(run / "config.json", run / "config.json")
    assert_refused(evaluate(run), 2)


def replace_checkpoint(run: Path, tensors_of, meta_of=lambda m: m) -> None:
    """Rewrite the run's last checkpoint as safetensors with changed tensors and metadata (tagged as MetaScope's)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = sorted((run / "checkpoints").glob("step-*.safetensors"))[-1]
    with safe_open(str(path), "pt") as handle:
        tensors, meta = {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata()
    save_file(tensors_of(tensors), str(path), metadata=meta_of(meta))


@pytest.mark.parametrize(
    "shape", ["0,28,28", "1,28,0", "-1,28,28", "1,28", "a,b,c", "1,28,28,28"], ids=lambda s: s.replace(",", "x") or "empty"
)
def test_checkpoint_input_shape(good_run: GoodRun, tmp_path: Path, shape: str):
    run = good_run.copy(tmp_path)
    replace_checkpoint(run, lambda t: t, lambda m: {**m, "input_shape": shape})
    assert_refused(evaluate(run), 2, "step-")


def test_checkpoint_with_an_extra_tensor(good_run: GoodRun, tmp_path: Path):
    import torch

    run = good_run.copy(tmp_path)
    replace_checkpoint(run, lambda t: {**t, "extra.weight": torch.zeros(3)})
    assert_refused(evaluate(run), 2, "does not fit")


def test_checkpoint_is_a_directory(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    path = sorted((run / "checkpoints").glob("step-*"))[-1]
    path.unlink()
    path.mkdir()
    assert_refused(evaluate(run), 2, "step-")


def test_checkpoint_is_dev_zero(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    path = sorted((run / "checkpoints").glob("step-*"))[-1]
    path.unlink()
    os.symlink("/dev/zero", path)
    assert_refused(evaluate(run), 2, "step-")


def test_checkpoints_folder_is_a_file(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").write_text("x")
    assert_refused(evaluate(run), 2, "no checkpoints")


# run.json and metrics.jsonl holding the wrong things: the listing and the readers go on, showing what is sound

RUN_JSON = {
    "a-list": b"[]",
    "created-text": b'{"status": "finished", "created": "yesterday"}',
    "val-acc-text": b'{"status": "finished", "final_val_acc": "0.9"}',
    "parameters-text": b'{"status": "finished", "parameters": "many"}',
    "final-step-float": b'{"status": "finished", "final_step": 1.5}',
    "input-shape-text": b'{"status": "finished", "input_shape": "1x28x28"}',
    "heartbeat-text": b'{"status": "running", "host": "elsewhere", "heartbeat": "now"}',
    "invalid-utf8": b'{"status": "fini\xffshed"}',
    "nested-100000-deep": b"[" * 100_000 + b"]" * 100_000,
}


def assert_listed(runs_dir: Path, run_id: str) -> str:
    """`python -m core runs` lists the run: exit 0, no traceback -> its line."""
    listed = call_cli("runs", "--runs-dir", runs_dir)
    assert listed.code == 0 and "Traceback" not in listed.err, listed.err[-2000:]
    lines = [line for line in listed.out.splitlines() if line.split()[0] == run_id]
    assert len(lines) == 1, listed.out
    return lines[0]


@pytest.mark.parametrize("content", list(RUN_JSON))
def test_run_json_content(good_run: GoodRun, tmp_path: Path, content: str):
    run = good_run.copy(tmp_path)
    (run / "run.json").write_bytes(RUN_JSON[content])
    info = RunDir(run).info()
    assert isinstance(info, dict) and all(
        not isinstance(info.get(k), str) for k in ("created", "final_val_acc", "parameters", "heartbeat")
    )  # a wrong type reads as absent
    assert RunDir(run).status() in ("finished", "unknown", "interrupted")
    assert_listed(run.parent, run.name)


def test_run_json_is_a_directory(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    (run / "run.json").unlink()
    (run / "run.json").mkdir()
    assert RunDir(run).status() == "unknown"
    assert_listed(run.parent, run.name)


METRICS = {
    "invalid-bytes": b'{"kind": "train", "step": 1, "loss": 1.0}\n\xff\xfe{"kind"\n',
    "a-list-line": b'{"kind": "train", "step": 1, "loss": 1.0}\n[1, 2]\n',
    "text-values": b'{"kind": "train", "step": 1, "loss": 1.0}\n{"kind": "train", "step": "2", "loss": "abc"}\n',
    "unknown-kind": b'{"kind": "train", "step": 1, "loss": 1.0}\n{"kind": 7, "step": 2}\n',
    "deep-line": b'{"kind": "train", "step": 1, "loss": 1.0}\n' + b"[" * 100_000 + b"\n",
}


@pytest.mark.parametrize("content", list(METRICS))
def test_metrics_line(good_run: GoodRun, tmp_path: Path, content: str):
    run = good_run.copy(tmp_path)
    (run / "metrics.jsonl").write_bytes(METRICS[content])
    records = RunDir(run).metrics()
    assert records == [{"kind": "train", "step": 1, "loss": 1.0}]  # the sound line kept, the damaged one skipped


def test_metrics_is_a_directory(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    assert RunDir(run).metrics() == []


# names that are not UTF-8


def non_utf8_folder(root: Path) -> Path:
    """Three class folders of 6 images, one named with the byte 0xff (not UTF-8)."""
    rng = np.random.default_rng(0)
    for name in (b"good", b"bad\xff", b"other"):
        folder = os.path.join(os.fsencode(root), name)
        os.makedirs(folder)
        for i in range(6):
            Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(os.fsdecode(os.path.join(folder, b"%d.png" % i)))
    return root


def test_folder_dataset_with_a_class_name_that_is_not_utf8(tmp_path: Path):
    data = non_utf8_folder(tmp_path / "data")
    outcome = train(tmp_path, "--dataset", "folder", "--data-dir", str(data), "--n-way", "2", "--k-shot", "1", "--q-query", "1")
    assert_refused(outcome, 2, "not valid UTF-8", "bad\\xff")


def test_predict_with_a_support_class_name_that_is_not_utf8(good_run: GoodRun, tmp_path: Path):
    support = non_utf8_folder(tmp_path / "support")
    query = tmp_path / "query"
    query.mkdir()
    shutil.copy(support / "good" / "0.png", query / "q.png")
    done = run_process("predict", "--run", good_run.path, "--support", support, "--query", query)  # a real stdout: UTF-8, strict
    assert done.code == 0 and "Traceback" not in done.err, done.err[-2000:]
    assert len(done.out.strip().splitlines()) == 2


def test_runs_listing_names_a_run_whose_config_is_a_directory(good_run: GoodRun, tmp_path: Path):
    run = good_run.copy(tmp_path)
    (run / "config.json").unlink()
    (run / "config.json").mkdir()
    line = assert_listed(run.parent, run.name)
    assert "config.json is damaged" in line and "is a folder" in line


def test_an_unexpected_error_gives_one_line_naming_its_log(monkeypatch, tmp_path: Path):
    """The boundary itself: a bug (here injected into a command) is one line with the log file, exit 1."""
    import core.cli

    def bug(args) -> None:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(core.cli, "cmd_runs", bug)
    monkeypatch.setenv("METASCOPE_LOGS", str(tmp_path / "logs"))
    line = assert_refused(call_cli("runs"), 1, "unexpected RuntimeError: a bug over two lines; the full traceback is in")
    log = Path(line.rsplit(" ", 1)[1])
    assert log.parent == tmp_path / "logs" and "Traceback" in log.read_text() and "python -m core runs" in log.read_text()


def test_runs_listing_of_names_stdout_cannot_print(good_run: GoodRun, tmp_path: Path):
    """A run folder named with a byte that is not UTF-8, and a config naming its learner with a lone surrogate."""
    shutil.copytree(good_run.path, os.fsdecode(os.fsencode(tmp_path / "runs") + b"/run-\xff"))
    odd = good_run.copy(tmp_path)
    damage_config(odd, lambda c: c["learner"].update(method="\ud800"))
    done = run_process("runs", "--runs-dir", tmp_path / "runs")  # a real stdout: UTF-8, strict
    assert done.code == 0 and "Traceback" not in done.err, done.err[-2000:]
    assert "run-\\xff" in done.out and len(done.out.strip().splitlines()) == 3
