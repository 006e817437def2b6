"""Trainer, TrainingRun and the run store: learning, stopping, pausing, checkpoints that load back."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from core.config import ConfigError, EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.data.splits import split_classes
from core.device import cpu_has_native_bf16, mixed_precision
from core.episodes import EpisodeSampler
from core.experiment import Experiment, load_learner
from core.store import CheckpointError, RunStore, read_checkpoint
from core.training.background import TrainingRun, start_run
from core.training.registry import RunError
from core.training.run import train_run
from core.training.trainer import Callback, Controls, Trainer
from tests.conftest import make_toy_set


def tiny_config(episodes: int = 30, **train) -> RunConfig:
    settings = dict(
        episodes=episodes, train_shape=EpisodeShape(5, 1, 3), eval_shape=EpisodeShape(3, 1, 3),
        val_every=10, val_episodes=10, checkpoint_every=10, log_every=5, rotations=False,
    )  # fmt: skip
    return RunConfig(LearnerConfig(), TrainConfig(**{**settings, **train}))


@pytest.fixture
def experiment():
    image_set = make_toy_set(n_classes=40, size=16)
    return Experiment(image_set, split_classes(image_set, 0), torch.device("cpu"))


class Recorder(Callback):
    def __init__(self):
        self.logs, self.vals, self.ends = [], [], []

    def on_log(self, trainer, record):
        self.logs.append(record)

    def on_validation(self, trainer, record):
        self.vals.append(record)

    def on_end(self, trainer, status):
        self.ends.append(status)


def test_trainer_learns_and_reports_through_callbacks(experiment):
    config = tiny_config(episodes=60, lr=3e-3)
    learner = experiment.new_learner(config.learner)
    sampler = EpisodeSampler(experiment.pool("train"), 5, 1, 3, seed=0)
    recorder = Recorder()
    status = Trainer(learner, sampler, config.train, [recorder]).fit()
    assert status == "finished" and recorder.ends == ["finished"]
    assert [r["step"] for r in recorder.logs] == list(range(5, 61, 5))
    assert recorder.logs[-1]["loss"] < recorder.logs[0]["loss"]
    assert all(r["episodes_per_s"] > 0 for r in recorder.logs)
    assert recorder.logs[-1]["lr"] < config.train.lr  # the cosine schedule decayed


def test_stop_event_ends_training_early(experiment):
    config = tiny_config(episodes=1000)
    controls = Controls()

    class StopAt(Callback):
        def on_step_end(self, trainer, step):
            if step == 7:
                controls.stop.set()

    learner = experiment.new_learner(config.learner)
    trainer = Trainer(learner, EpisodeSampler(experiment.pool("train"), 5, 1, 3), config.train, [StopAt()], controls)
    assert trainer.fit() == "stopped" and trainer.step == 7


def test_saved_run_loads_back_with_identical_logits(experiment, tmp_path):
    config = tiny_config(episodes=20)
    run = RunStore(tmp_path).create(config)
    assert train_run(config, run, experiment=experiment) == "finished"
    assert [c.step for c in run.checkpoints()] == [10, 20]
    info = run.info()
    assert info["status"] == "finished" and info["input_shape"] == [1, 16, 16]
    kinds = {r["kind"] for r in run.metrics()}
    assert kinds == {"train", "val"}
    loaded, loaded_config, checkpoint = load_learner(run)
    assert loaded_config == config and checkpoint.step == 20
    # the in-memory learner at the end of training equals the checkpoint: retrain identically and compare
    ep = EpisodeSampler(experiment.pool("test"), 3, 1, 3, seed=5).sample()
    tensors, _ = read_checkpoint(checkpoint.path)
    fresh = experiment.new_learner(config.learner)
    fresh.load_state_dict(tensors)
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(loaded(ep.support_x, ep.support_y, ep.query_x), fresh(ep.support_x, ep.support_y, ep.query_x))


def test_same_seed_same_weights(experiment, tmp_path):
    config = tiny_config(episodes=10, val_every=0)
    runs = [RunStore(tmp_path / str(i)).create(config) for i in range(2)]
    for run in runs:
        train_run(config, run, experiment=experiment)
    a, b = (read_checkpoint(r.checkpoints()[-1].path)[0] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_background_run_pause_resume_stop_keeps_last_checkpoint(tmp_path, monkeypatch):
    image_set = make_toy_set(n_classes=40, size=16)
    monkeypatch.setattr("core.experiment.load_dataset", lambda *a, **k: image_set)
    run = TrainingRun(tiny_config(episodes=100000, checkpoint_every=1000), tmp_path).start()
    _wait(lambda: run.snapshot().step >= 3)
    run.pause()
    assert run.snapshot().status == "paused"
    step = run.snapshot().step
    threading.Event().wait(0.5)
    assert run.snapshot().step <= step + 1  # at most the step in flight finishes
    run.resume()
    _wait(lambda: run.snapshot().step > step + 2)
    run.stop()
    assert run.join(timeout=30)
    snap = run.snapshot()
    assert snap.status == "stopped" and snap.done
    last = run.run.checkpoints()[-1]
    assert last.step == snap.step
    learner, _, _ = load_learner(run.run)
    assert learner is not None
    assert json.loads((run.run.path / "run.json").read_text())["status"] == "stopped"


def test_error_inside_a_run_is_reported_not_raised(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("core.experiment.load_dataset", broken)
    run = TrainingRun(tiny_config(), tmp_path).start()
    assert run.join(timeout=30)
    snap = run.snapshot()
    assert snap.status == "failed" and "disk on fire" in snap.error
    assert "disk on fire" in run.run.read_json("error.json")["traceback"]


def test_only_one_background_run_at_a_time(tmp_path, monkeypatch):
    image_set = make_toy_set(n_classes=40, size=16)
    monkeypatch.setattr("core.experiment.load_dataset", lambda *a, **k: image_set)
    first = start_run(tiny_config(episodes=100000), tmp_path)
    try:
        with pytest.raises(RunError, match="still training"):
            start_run(tiny_config(), tmp_path)
    finally:
        first.stop()
        first.join(30)


def test_damaged_and_foreign_checkpoints_give_named_errors(experiment, tmp_path):
    config = tiny_config(episodes=10, val_every=0)
    run = RunStore(tmp_path).create(config)
    train_run(config, run, experiment=experiment)
    path = run.checkpoints()[-1].path
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_learner(run)
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="not a MetaScope checkpoint"):
        load_learner(run)
    path.write_bytes(good)
    config_path = run.path / "config.json"
    data = json.loads(config_path.read_text())
    data["learner"]["backbone"] = "resnet12"
    config_path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="does not fit a protonet / resnet12 learner"):
        load_learner(run)
    config_path.write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged or not a MetaScope config"):
        load_learner(run)


def _wait(condition, timeout: float = 60.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        event.wait(0.05)
    raise AssertionError("condition not reached in time")


def test_precision_resolves_per_device_and_bad_names_are_refused():
    assert mixed_precision("fp32", "cpu") is None and mixed_precision("bf16", "cpu") is torch.bfloat16
    # auto: bf16 only on a CPU that computes it in hardware (this machine's EPYC does; CI's may not)
    assert mixed_precision("auto", "cpu") is (torch.bfloat16 if cpu_has_native_bf16() else None)
    with pytest.raises(ConfigError, match="unknown precision 'fp8'; use auto, fp32 or bf16"):
        TrainConfig(precision="fp8")
    assert RunConfig.from_dict(json.loads(tiny_config(precision="bf16").to_json())).train.precision == "bf16"
    old = json.loads(tiny_config().to_json())
    del old["train"]["precision"]  # a run saved before the setting existed
    assert RunConfig.from_dict(old).train.precision == "auto"


def test_bf16_training_runs_the_backbone_in_bf16_and_scores_in_float32(experiment):
    config = tiny_config(episodes=40, lr=3e-3, precision="bf16")
    learner = experiment.new_learner(config.learner)
    seen: list[torch.dtype] = []
    learner.backbone.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    trainer = Trainer(learner, EpisodeSampler(experiment.pool("train"), 5, 1, 3, seed=0), config.train, [recorder := Recorder()])
    ep = trainer.sampler.sample()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = learner(ep.support_x, ep.support_y, ep.query_x, 5)
    assert seen[-1] == torch.bfloat16 and logits.dtype == torch.float32
    assert trainer.fit() == "finished" and seen[-1] == torch.bfloat16  # the trainer's steps ran under autocast too
    assert all(p.dtype == torch.float32 for p in learner.parameters())  # weights stay float32
    assert recorder.logs[-1]["loss"] < recorder.logs[0]["loss"]
