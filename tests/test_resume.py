"""Resume: a run continued from its last checkpoint ends with the weights of an uninterrupted run; what can and
cannot be resumed, and how the training state is stored (safetensors and JSON, no pickle)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.episodes import ClassPool, EpisodeSampler
from core.experiment import preflight
from core.store import RunDir, RunStore, read_checkpoint
from core.training.resume import TRAIN_STATE_FORMAT, ResumeError, check_resumable, pack, read_point, unpack
from core.training.run import train_run
from core.training.trainer import Callback, Trainer

ROOT = Path(__file__).resolve().parents[1]


def tiny(method: str = "protonet", episodes: int = 12, **train: object) -> RunConfig:
    """4 checkpoints of 3 steps, 2 episodes a step, validated twice: seconds on the CPU."""
    settings = dict(
        dataset="glyphs", image_size=16, episodes=episodes, train_shape=EpisodeShape(5, 1, 2), eval_shape=EpisodeShape(5, 1, 2),
        meta_batch=2, val_every=6, val_episodes=4, checkpoint_every=3, log_every=2, device="cpu",
    )  # fmt: skip
    return RunConfig(LearnerConfig(method=method, inner_steps=1), TrainConfig(**{**settings, **train}))


class Crash(Callback):
    """Raises at `step`, as a process that dies mid-run stops: after its checkpoint, before the next."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if step == self.step:
            raise RuntimeError("the machine went away")


def weights(run: RunDir) -> dict[str, torch.Tensor]:
    return read_checkpoint(run.checkpoints()[-1].path)[0]


@pytest.mark.parametrize("method,train", [("protonet", {}), ("maml", {"optimizer": "sgd", "schedule": "step"})])
def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, method, train):
    config = tiny(method, **train)
    store, experiment = RunStore(tmp_path), preflight(config)
    whole = store.create(config)
    assert train_run(config, whole, experiment=experiment) == "finished"

    broken = store.create(config)
    with pytest.raises(RuntimeError, match="went away"):
        train_run(config, broken, callbacks=[Crash(8)], experiment=experiment)
    assert broken.status() == "failed"  # an error in training marks it so (a killed process reads interrupted: below)
    assert [c.step for c in broken.checkpoints()] == [3, 6]
    point = read_point(broken)
    assert point is not None and point.step == 6
    assert train_run(check_resumable(broken), broken, experiment=experiment, resume=point) == "finished"

    for key, value in weights(whole).items():  # the same operations in the same order: equal bit for bit (float32)
        assert torch.equal(value, weights(broken)[key]), key
    strip = lambda records: [{k: v for k, v in r.items() if k not in ("time", "episodes_per_s")} for r in records]  # noqa: E731
    assert strip(broken.metrics()) == strip(whole.metrics())  # records to step 6 kept, those after it trained again, once
    assert broken.status() == "finished" and broken.info()["final_step"] == 12


def test_a_stopped_run_resumes_from_where_it_stopped(tmp_path):
    config = tiny()
    store, experiment = RunStore(tmp_path), preflight(config)
    whole, stopped = store.create(config), store.create(config)
    train_run(config, whole, experiment=experiment)

    class Stop(Callback):
        def on_step_end(self, trainer: Trainer, step: int) -> None:
            if step == 4:
                trainer.controls.stop.set()

    assert train_run(config, stopped, callbacks=[Stop()], experiment=experiment) == "stopped"
    assert read_point(stopped).step == 4  # not a checkpoint step: a stopped run saves where it stopped
    assert train_run(check_resumable(stopped), stopped, experiment=experiment, resume=read_point(stopped)) == "finished"
    assert all(torch.equal(v, weights(stopped)[k]) for k, v in weights(whole).items())


def test_the_training_state_is_safetensors_and_json_and_only_the_latest_is_kept(tmp_path):
    config = tiny(episodes=6)
    run = RunStore(tmp_path).create(config)
    train_run(config, run)
    states = sorted(p.name for p in run.train_state_dir.glob("*.safetensors"))
    assert states == ["step-0000006.safetensors"]
    with safe_open(str(run.train_state_dir / states[0]), framework="pt") as handle:
        meta = handle.metadata()
        keys = set(handle.keys())
    assert meta["format"] == TRAIN_STATE_FORMAT and meta["step"] == "6"
    assert {"sampler.generator", "sampler.classes", "sampler.positions", "rng"} <= keys
    assert any(k.startswith("optimizer.state.") and k.endswith(".exp_avg") for k in keys)
    assert b"pickle" not in (run.train_state_dir / states[0]).read_bytes()[:200]


def test_pack_keeps_int_keys_tuples_and_tensors():
    value = {"state": {0: {"step": torch.tensor(3.0)}, 1: {}}, "groups": [{"betas": (0.9, 0.99), "params": [0, 1], "lr": 1e-3}]}
    tensors: dict[str, torch.Tensor] = {}
    back = unpack(pack(value, tensors, "opt"), tensors)
    assert back == {"state": {0: {"step": torch.tensor(3.0)}, 1: {}}, "groups": [{"betas": (0.9, 0.99), "params": [0, 1], "lr": 1e-3}]}
    with pytest.raises(TypeError, match="cannot be stored without pickle"):
        pack({"f": object()}, {}, "x")


def test_the_episode_stream_continues_from_its_state(toy_set):
    pool = ClassPool(toy_set, range(20))
    one, other = EpisodeSampler(pool, 5, 1, 3, seed=4, ahead=8), EpisodeSampler(pool, 5, 1, 3, seed=4, ahead=8)
    for _ in range(5):
        one.sample()
    other.skip(5)  # drawn without images, as a torchrun rank passes over the others' episodes
    assert torch.equal(one.sample().query_idx, other.sample().query_idx)
    state = one.state()
    resumed = EpisodeSampler(pool, 5, 1, 3, seed=99)
    resumed.load_state(state)
    for _ in range(12):  # across the next draw-ahead
        assert torch.equal(one.sample().support_idx, resumed.sample().support_idx)


def test_what_cannot_be_resumed_says_why(tmp_path):
    config = tiny(episodes=3)
    run = RunStore(tmp_path).create(config)
    train_run(config, run)
    with pytest.raises(ResumeError, match=f"run {run.id} has finished all its steps; there is nothing to resume"):
        check_resumable(run)
    with run.hold():  # trained by someone now
        run.update_info(status="running")
        with pytest.raises(ResumeError, match="is being trained by another process now"):
            check_resumable(run)
    (run.train_state_dir / "step-0000003.safetensors").unlink()
    with pytest.raises(ResumeError, match="has checkpoints but no training state"):
        read_point(run)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "core", "train", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


@pytest.mark.slow
def test_the_command_line_resumes_a_killed_run_and_refuses_a_finished_one(tmp_path):
    flags = ["--dataset", "glyphs", "--image-size", "16", "--n-way", "5", "--k-shot", "1", "--q-query", "2", "--meta-batch", "2"]
    flags += ["--episodes", "400", "--val-every", "0", "--checkpoint-every", "5", "--runs-dir", str(tmp_path / "runs")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    job = subprocess.Popen([sys.executable, "-m", "core", "train", *flags], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not list((tmp_path / "runs").glob("*/train_state/*.safetensors")):
        assert job.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait()
    run = RunStore(tmp_path / "runs").runs()[0]
    assert run.status() == "interrupted"

    again = cli("--resume", str(run.path), "--lr", "0.1")
    assert again.returncode == 2 and again.stderr.strip() == "error: --resume continues a run with its own settings; drop --lr"
    resumed = cli("--resume", run.id, "--runs-dir", str(tmp_path / "runs"))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == str(run.path)
    assert run.status() == "finished" and run.info()["resumed"][0]["step"] >= 5

    torch.set_num_threads(1)  # as the command line ran: the same kernels, the same sums
    try:
        reference = RunStore(tmp_path / "reference").create(run.config())
        train_run(run.config(), reference)
    finally:
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    for key, value in weights(reference).items():
        torch.testing.assert_close(weights(run)[key], value, atol=0, rtol=0, msg=key)

    refused = cli("--resume", str(run.path))
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: run {run.id} has finished all its steps; there is nothing to resume. " + (
        "Start a new run, or warm-start one from it (--init-from)"
    )


def test_resume_auto_continues_the_newest_interrupted_run_of_the_same_settings(tmp_path):
    from core.training.job import plan_job

    config, other = tiny(), tiny(episodes=9)
    store = RunStore(tmp_path)
    assert plan_job(config, tmp_path, "auto").run is None  # nothing to continue: a new run
    older, newer, finished, foreign = (store.create(c) for c in (config, config, config, other))
    for run, status in ((older, "running"), (newer, "running"), (finished, "finished"), (foreign, "running")):
        run.update_info(status=status)  # 'running' without its lock: a process that died
    older.update_info(created=newer.info()["created"] - 1)
    finished.update_info(created=newer.info()["created"] + 1)
    plan = plan_job(config, tmp_path, "auto")
    assert plan.run is not None and plan.run.path == newer.path and plan.point is None and plan.config == config
    with pytest.raises(ResumeError, match="--resume auto continues the newest interrupted run of the settings given; give them"):
        plan_job(None, tmp_path, "auto")
