"""Runs trained by other processes (a CLI or torchrun job, on this machine or on a shared disk), followed read-only
from their run folders; and, where several GPUs are visible, a run started on all of them through torchrun."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import streamlit as st
import torch

from core.config import RunConfig
from core.store import RunDir, RunStore
from core.training.distributed import check_shares, launch
from dashboard.charts.training import split_records, training_curves
from dashboard.i18n import tr
from dashboard.labels import status_label

POLL_S = 2.0  # metrics.jsonl is rewritten every couple of seconds at most (core.training.run.METRICS_WRITE_INTERVAL_S)
TORCHRUN_LOG = "torchrun.log"  # the launcher's output, beside the run it trains


def where(info: dict[str, object]) -> str:
    """Who trains the run, from run.json: this dashboard, or another process (its host, pid, number of processes)."""
    here = info.get("host") == socket.gethostname()
    if here and info.get("pid") == os.getpid():
        return tr("by this dashboard (its controls are on the Train page)")
    place = tr("on this machine") if here else tr("on {host}", host=info.get("host", "?"))
    processes = int(info.get("world_size", 1) or 1)
    if processes > 1:
        return tr("by process {pid} of a torchrun job of {n} processes {place}", pid=info.get("pid", "?"), n=processes, place=place)
    return tr("by process {pid} {place}", pid=info.get("pid", "?"), place=place)


def follow(run: RunDir, total: int) -> None:
    """A run being trained now: its progress and curves, re-read from its folder every POLL_S seconds; the page
    redraws itself once the run ends, and the run can then be used like any other."""

    @st.fragment(run_every=POLL_S)
    def draw() -> None:
        status, info = run.status(), run.info()
        train, val = split_records(run.metrics())
        step = max((r["step"] for r in train + val if isinstance(r.get("step"), int)), default=0)
        where_now = tr("{run} · {status} · step {step} of {total}", run=run.id, status=status_label(status), step=step, total=total)
        st.progress(min(step / max(total, 1), 1.0), text=where_now)
        st.caption(tr("Trained {who}; shown read-only from its run folder, redrawn every {s} s.", who=where(info), s=f"{POLL_S:.0f}"))
        st.plotly_chart(training_curves(train, val), key="rn_live_curves")
        if status != "running":
            st.rerun()  # ended (finished, stopped or killed): draw it as a saved run

    draw()


def gpus() -> int:
    """The CUDA devices this server sees: a run can be started on all of them when there are several."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def start_torchrun(config: RunConfig, runs_dir: str | Path, processes: int) -> RunDir:
    """Create the run folder of `config` and train it with the documented torchrun command, one process per GPU,
    in a session of its own (it outlives a closed browser tab; the Runs page follows it as any other process's run).

    Tested on the CPU (2 processes over gloo, tests/dashboard/test_external_run.py); untried with NCCL on GPUs."""
    check_shares(config.train.meta_batch, processes)  # before a folder exists: a refused job leaves nothing behind
    run = RunStore(runs_dir).create(config)
    launch(["train", "--resume", str(run.path), "--runs-dir", str(runs_dir)], processes, run.path / TORCHRUN_LOG)
    return run
