"""torchrun on the CPU (gloo): 2 processes train the weights 1 process trains; rank 0 alone writes the run;
a killed rank ends the job with a clear message and a loadable checkpoint, and --max-restarts resumes by itself.

Each test starts real processes (`python -m torch.distributed.run ... -m core train`), 1 thread each, on tiny
episodes of 16-pixel glyphs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from core.experiment import load_learner
from core.store import RunDir, RunStore, read_checkpoint
from core.training.distributed import Ranks, running_norms, torchrun_command
from core.training.trainer import Alone

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600
# 5-way 1-shot 2-query glyphs of 16 pixels; a meta-batch of 3 shares unevenly between 2 processes (1 + 2 episodes).
# SGD: where weights are compared across numbers of processes. Two summation orders of the same gradients differ by
# float rounding; SGD keeps that a rounding difference, but Adam divides each gradient by its running root mean
# square, so a parameter whose true gradient is zero (a convolution's bias before batch norm, the last batch norm's
# shift under a Euclidean distance) takes steps of lr in directions set by rounding noise, in any two runs whose
# sums differ in order (even one process with another number of threads). Those parameters change nothing the
# learner computes; resuming in the same order is compared under Adam, bit for bit, in tests/test_resume.py.
TINY = [
    "--dataset", "glyphs", "--image-size", "16", "--n-way", "5", "--k-shot", "1", "--q-query", "2", "--meta-batch", "3",
    "--optimizer", "sgd", "--lr", "0.05", "--seed", "0",
]  # fmt: skip
ATOL, RTOL = 1e-5, 1e-4  # float32; the largest difference seen: 4.5e-6 on weights of about 0.1

pytestmark = pytest.mark.slow


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def core_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "core", "train", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment(), timeout=TIMEOUT_S)


def torchrun(*args: str, cwd: Path, processes: int = 2, restarts: int = 0) -> subprocess.Popen:
    """The README's command (python -m torch.distributed.run --standalone --nproc-per-node N -m core train ...), started."""
    command = torchrun_command(["train", *args], processes, restarts)
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=environment())


def finish(job: subprocess.Popen) -> tuple[int, str, str]:
    out, err = job.communicate(timeout=TIMEOUT_S)
    return job.returncode, out, err


def only_run(runs: Path) -> RunDir:
    found = RunStore(runs).runs()
    assert len(found) == 1, found
    return found[0]


def final_weights(run: RunDir) -> dict[str, torch.Tensor]:
    return read_checkpoint(run.checkpoints()[-1].path)[0]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=ATOL, rtol=RTOL, msg=lambda m, key=key: f"{key}: {m}")


def kill_rank_once_checkpointed(job: subprocess.Popen, run_parent: Path, rank: int = 1, sig: int = signal.SIGKILL) -> int:
    """Send `sig` to the process of `rank` as soon as the run has its first resumable checkpoint -> the step it was at."""
    deadline = time.monotonic() + TIMEOUT_S
    while not list(run_parent.glob("*/train_state/*.safetensors")):
        assert job.poll() is None, job.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    worker = next(p for p in psutil.Process(job.pid).children(recursive=True) if p.environ().get("RANK") == str(rank))
    worker.send_signal(sig)
    return RunStore(run_parent).runs()[0].checkpoints()[-1].step


def test_the_meta_batch_is_cut_into_contiguous_parts_that_cover_it():
    for world in (1, 2, 3, 4):
        for meta_batch in range(world, 10):
            parts = [Ranks(r, world, r).part(meta_batch) for r in range(world)]
            assert [i for p in parts for i in p] == list(range(meta_batch))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert Alone().part(5) == range(5)
    with pytest.raises(Exception, match="a meta-batch of 1 episodes cannot be shared by 2 processes; use a meta-batch of 2 or more"):
        Ranks(0, 2, 0).part(1)


def test_two_processes_end_with_the_weights_of_one_and_only_rank_0_writes(tmp_path):
    settings = [*TINY, "--episodes", "8", "--val-every", "4", "--val-episodes", "5", "--checkpoint-every", "4"]
    one = core_train(*settings, "--runs-dir", str(tmp_path / "one"), cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    work = tmp_path / "work"
    work.mkdir()
    code, out, err = finish(torchrun(*settings, "--runs-dir", "runs", cwd=work))
    assert code == 0, err

    run, single = only_run(work / "runs"), only_run(tmp_path / "one")
    assert sorted(p.name for p in work.iterdir()) == ["runs"]  # nothing else written by any process
    assert out.strip().splitlines() == [str(Path("runs") / run.id)]  # rank 0 alone prints the run folder
    assert_same_weights(final_weights(run), final_weights(single))
    first = read_checkpoint(run.checkpoints()[0].path)[0]  # the weights moved far more than the tolerance
    assert max(float((final_weights(run)[k] - first[k]).abs().max()) for k in first if first[k].is_floating_point()) > 1000 * ATOL
    bn = [k for k in final_weights(run) if "running_mean" in k]
    assert bn and all(not torch.equal(final_weights(run)[k], torch.zeros_like(final_weights(run)[k])) for k in bn)

    info = run.info()
    assert info["status"] == "finished" and info["world_size"] == 2 and info["final_step"] == 8
    assert run.config() == single.config()  # the world size changes nothing the config defines
    files = sorted(p.relative_to(run.path).as_posix() for p in run.path.rglob("*") if p.is_file())
    expected = [
        "checkpoints/step-0000004.safetensors",
        "checkpoints/step-0000008.safetensors",
        "train_state/step-0000008.safetensors",
    ]
    assert files == sorted([".alive.lock", "config.json", "metrics.jsonl", "run.json", *expected])
    records, single_records = run.metrics(), single.metrics()
    assert [(r["kind"], r["step"]) for r in records] == [(r["kind"], r["step"]) for r in single_records]
    for mine, theirs in zip(records, single_records, strict=True):  # the loss is the whole meta-batch's, summed over processes
        for key in ("loss", "train_acc", "val_acc"):
            if key in mine:
                assert mine[key] == pytest.approx(theirs[key], abs=1e-4)
    learner, _, checkpoint = load_learner(run)
    assert checkpoint.step == 8 and not learner.training


def test_a_killed_rank_ends_the_job_with_a_message_and_a_loadable_checkpoint(tmp_path):
    settings = [*TINY, "--episodes", "3000", "--val-every", "0", "--checkpoint-every", "5"]
    job = torchrun(*settings, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    kill_rank_once_checkpointed(job, tmp_path / "runs")
    code, _, err = finish(job)

    assert code != 0
    run = only_run(tmp_path / "runs")
    lines = [line for line in err.splitlines() if line.startswith("error: process 0 of 2: the job lost a process")]
    assert len(lines) == 1, err
    assert f"run {run.path} is interrupted and its last checkpoint is step {run.checkpoints()[-1].step}" in lines[0]
    assert lines[0].endswith(f"continue it with: torchrun --nproc-per-node 2 -m core train --resume {run.path}")
    assert not [line for line in err.splitlines() if line.startswith("[rank") and "Traceback" in line]  # torchrun's own report follows
    assert run.status() == "interrupted"
    learner, config, checkpoint = load_learner(run)
    assert checkpoint.step >= 5 and config.train.episodes == 3000
    assert sum(p.numel() for p in learner.parameters()) == run.info()["parameters"]


def test_torchruns_sigterm_reaching_rank_0_first_still_gets_the_line_and_ends_it_at_once(tmp_path):
    """torchrun ends a job's processes with SIGTERM; rank 0, busy training (not inside a failing collective), says
    where the run stands and leaves at once, instead of dying silently or waiting to be killed."""
    settings = [*TINY, "--episodes", "3000", "--val-every", "0", "--checkpoint-every", "5"]
    job = torchrun(*settings, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    kill_rank_once_checkpointed(job, tmp_path / "runs", rank=0, sig=signal.SIGTERM)
    started = time.monotonic()
    code, _, err = finish(job)

    assert code != 0 and time.monotonic() - started < 20, err  # torchrun would wait 30 s before it kills
    run = only_run(tmp_path / "runs")
    lines = [line for line in err.splitlines() if line.startswith("error: process 0 of 2: the job lost a process")]
    assert len(lines) == 1, err
    assert "(torchrun ended this process with SIGTERM)" in lines[0]
    assert f"run {run.path} is interrupted and its last checkpoint is step {run.checkpoints()[-1].step}" in lines[0]
    assert lines[0].endswith(f"continue it with: torchrun --nproc-per-node 2 -m core train --resume {run.path}")
    assert run.status() == "interrupted"


def test_max_restarts_resumes_a_killed_job_by_itself_to_the_uninterrupted_weights(tmp_path):
    """Compared with an uninterrupted job of 2 processes: the same sums in the same order, so equal bit for bit.
    (Against 1 process the weights drift apart by float rounding, which these tiny runs amplify over 20 steps:
    one process with 2 threads against 1 thread differs more than 2 processes against 1.)"""
    settings = [*TINY, "--episodes", "20", "--val-every", "0", "--checkpoint-every", "5"]
    job = torchrun(*settings, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path, restarts=1)
    killed_after = kill_rank_once_checkpointed(job, tmp_path / "runs")
    code, out, err = finish(job)
    assert code == 0, err

    run = only_run(tmp_path / "runs")
    lines = [line for line in err.splitlines() if line.startswith("error: process 0 of 2: the job lost a process")]
    assert len(lines) == 1 and lines[0].endswith("torchrun restarts the job, which resumes it (--max-restarts)"), err
    info = run.info()
    resumed_at = info["resumed"][0]["step"]
    assert f"process 0 of 2: torchrun restarted the job; run {run.path} resumes from step {resumed_at}" in err.splitlines(), err
    assert info["status"] == "finished" and info["final_step"] == 20
    assert [r["world_size"] for r in info["resumed"]] == [2] and info["resumed"][0]["step"] >= killed_after
    assert [r["step"] for r in run.metrics()] == [10, 20]  # records after the resumed step trained again, once
    code, _, err = finish(torchrun(*settings, "--runs-dir", str(tmp_path / "uninterrupted"), cwd=tmp_path))
    assert code == 0, err
    for key, value in final_weights(only_run(tmp_path / "uninterrupted")).items():
        assert torch.equal(final_weights(run)[key], value), key


def test_running_statistics_of_parts_combine_as_one_process_would():
    """Ranks' batch-norm merge, without processes: the shares of 3 parts, summed, give the sequential statistics."""
    from core.training.distributed import running_stat_shares, set_running_stats

    for momentum in (0.1, None):
        bn = torch.nn.BatchNorm1d(4, momentum=momentum)
        bn.running_mean.normal_(generator=torch.Generator().manual_seed(9))
        bn.running_var.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(8))
        bn.num_batches_tracked.fill_(3)
        batches = [torch.randn(6, 4, generator=torch.Generator().manual_seed(i)) for i in range(6)]
        start = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
        for x in batches:  # one process: 6 episodes, one update each
            bn(x)
        expected = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
        shares = []
        for part in (range(0, 1), range(1, 4), range(4, 6)):  # three processes
            bn.running_mean.copy_(start[0]), bn.running_var.copy_(start[1]), bn.num_batches_tracked.copy_(start[2])
            for i in part:
                bn(batches[i])
            shares.append(running_stat_shares(bn, *start, len(part), 6 - part.stop))
        summed = [sum(s[i] for s in shares) for i in range(3)]
        set_running_stats(bn, *start, summed[0], summed[1], summed[2][0])
        torch.testing.assert_close(bn.running_mean, expected[0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(bn.running_var, expected[1], atol=1e-6, rtol=1e-5)
        assert int(bn.num_batches_tracked) == expected[2] == 9
    kept, batch_only = torch.nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2, track_running_stats=False)
    assert running_norms(torch.nn.Sequential(kept, batch_only)) == [kept]
