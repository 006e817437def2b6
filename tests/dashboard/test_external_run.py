"""AppTest of the Runs page following a run that another process trains: shown as running, its curve re-read from
its folder, read-only (no delete), and drawn as a saved run once that process is gone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import UserError
from core.store import LIVE_LOCK, RunDir, RunStore
from dashboard.external_run import POLL_S, start_torchrun, where

HOLD = (  # another process that trains the run, as far as a reader can tell: it holds the run's lock
    "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); "
    "print('held', flush=True); time.sleep(120)"
)


def figure(at, key: str) -> dict | None:
    charts = [c for c in at.get("plotly_chart") if key in c.proto.id]
    return json.loads(charts[0].proto.spec) if charts else None


def loss_steps(at, key: str) -> list[int]:
    fig = figure(at, key)
    assert fig is not None, f"no chart {key}"
    return next(t for t in fig["data"] if t["name"] == "training loss")["x"]


def record(run: RunDir, *steps: int) -> None:
    """What the training process appends: a training record per logged step (metrics.jsonl, rewritten whole)."""
    run.write_metrics([*run.metrics(), *({"kind": "train", "step": s, "loss": 1.0 / s, "train_acc": 0.5} for s in steps)])


def test_a_run_trained_by_another_process_is_followed_read_only_until_it_ends(
    open_app, folder_choice, tiny_config, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("METASCOPE_ALLOW_DELETE", "1")  # deleting is the operator's choice: on here, to see it offered after
    run = RunStore(tmp_path / "external").create(tiny_config(folder_choice, episodes=30))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run.path / LIVE_LOCK)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        run.update_info(status="running", pid=holder.pid, host=socket.gethostname(), world_size=2)
        record(run, 10, 20)
        at = open_app("runs", ms_runs_dir=str(tmp_path / "external"))
        assert at.dataframe[0].value.set_index("run").loc[run.id, "status"] == "training"  # the status in the reader's words
        assert at.get("progress")[0].proto.text == f"{run.id} · training · step 20 of 30"
        captions = " ".join(c.value for c in at.caption)
        assert f"by process {holder.pid} of a torchrun job of 2 processes on this machine" in captions
        assert f"redrawn every {POLL_S:.0f} s" in captions
        assert loss_steps(at, "rn_live_curves") == [10, 20] and figure(at, "rn_curves") is None
        assert "it can be deleted once that ends" in " ".join(c.value for c in at.caption)
        assert not [b for b in at.button if b.key == "rn_delete"]  # read-only while another process writes it

        record(run, 30)  # the training process writes on; the page's next read follows
        at.run()
        assert loss_steps(at, "rn_live_curves") == [10, 20, 30]
    finally:
        holder.kill()
        holder.wait()
    at.run()  # its process is gone: an interrupted run, drawn like any saved one
    assert not at.exception
    assert at.dataframe[0].value.set_index("run").loc[run.id, "status"] == "interrupted"
    assert loss_steps(at, "rn_curves") == [10, 20, 30] and figure(at, "rn_live_curves") is None
    assert [b for b in at.button if b.key == "rn_delete"]


def test_where_says_who_trains_a_run():
    import os

    here = socket.gethostname()
    assert where({"host": here, "pid": os.getpid()}).startswith("by this dashboard")
    assert where({"host": here, "pid": 7}) == "by process 7 on this machine"
    assert where({"host": "node-3", "pid": 7, "world_size": 8}) == "by process 7 of a torchrun job of 8 processes on node-3"


def test_the_train_page_offers_torchrun_only_where_several_gpus_are_seen(open_app, folder_choice, monkeypatch):
    at = open_app("train", ms_data=folder_choice)
    assert not [t for t in at.toggle if t.key == "tr_all_gpus"]
    monkeypatch.setattr("dashboard.external_run.gpus", lambda: 4)
    at.run()
    assert [t.label for t in at.toggle if t.key == "tr_all_gpus"] == ["Train on all 4 GPUs (torchrun; follow it on the Runs page)"]


def test_train_on_all_devices_starts_one_torchrun_job_whose_run_the_runs_page_draws(open_app, folder_choice, monkeypatch, tmp_path):
    """The whole path but NCCL: with 2 "GPUs" seen, Start launches torchrun with 2 processes; on this CPU-only machine
    they train the run's CPU config over gloo, rank 0 writes the folder, and the finished run is drawn as any other."""
    monkeypatch.setattr("dashboard.external_run.gpus", lambda: 2)
    at = open_app("train", ms_data=folder_choice)
    at.number_input(key="tr_episodes").set_value(6)
    at.toggle(key="tr_all_gpus").set_value(True).run()
    assert at.number_input(key="tr_gpu_meta_batch").value == 2  # ProtoNet's form has no meta-batch: each GPU needs episodes
    at.button(key="tr_start").click().run()
    assert not at.exception, at.exception
    assert at.success and at.success[0].value.startswith("Started ") and at.success[0].value.endswith(" on 2 GPUs.")
    (path,) = (tmp_path / "runs").iterdir()
    run = RunDir(path)
    deadline = time.monotonic() + 240  # two processes start torch and train 6 steps
    while run.status() not in ("finished", "failed", "interrupted"):
        assert time.monotonic() < deadline, (path / "torchrun.log").read_text()
        time.sleep(0.5)
    assert run.status() == "finished", (path / "torchrun.log").read_text()
    assert run.info()["world_size"] == 2 and run.checkpoints()[-1].step == 6
    at.switch_page(str(Path(__file__).resolve().parents[2] / "pages" / "runs.py")).run()
    assert not at.exception, at.exception
    assert run.id in at.selectbox(key="rn_pick").options


def test_a_job_whose_processes_cannot_share_a_step_is_refused_before_a_folder_exists(tiny_config, folder_choice, tmp_path):
    with pytest.raises(UserError, match="a meta-batch of 1 episodes cannot be shared by 2 processes"):
        start_torchrun(tiny_config(folder_choice), tmp_path / "runs", 2)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
