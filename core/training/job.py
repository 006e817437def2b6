"""One training job of the command line: a process alone, or one process of a torchrun job.

Rank 0 decides which run the job trains (a new one; the one --resume names; after torchrun restarted the job,
the one it was training) and tells the others, who may not see the run folder; every process then checks its
own data; rank 0 creates the run folder (only once every process could) and alone writes it. Validation runs
on rank 0 (the others wait for it at the next step's all-reduce); evaluation is `python -m core eval` as ever.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from core.config import RunConfig
from core.data.cache import NO_HOOKS, Hooks
from core.errors import UserError
from core.experiment import preflight
from core.store import RunDir, RunStore
from core.training.distributed import Interrupted, barrier, broadcast_bytes, check_device, job_id, join, leave, restarted, restarts_left
from core.training.resume import ResumeError, ResumePoint, check_resumable, find_resumable, find_run, read_point
from core.training.run import make_trainer, train_run
from core.training.stop_signal import StopSignal
from core.training.trainer import Alone, Callback


class JobStopped(Exception):
    """The job lost one of its processes; the message names the run and how to continue it."""


@dataclass(frozen=True)
class Plan:
    """What the job trains: `config`, into `run` (None: a new run folder), from `point` (None: from the start)."""

    config: RunConfig
    run: RunDir | None = None
    point: ResumePoint | None = None


AUTO = "auto"  # --resume auto: the newest resumable run of the same settings, else a new run


def plan_job(config: RunConfig | None, runs_dir: str | Path, resume: str | None) -> Plan:
    """Rank 0's decision: resume the named run; with --resume auto, the newest interrupted run of `config`; after
    a torchrun restart (--max-restarts), the run this job was training; else a new run."""
    if config is not None and (resume == AUTO or (resume is None and restarted())):
        found = find_resumable(runs_dir, config, job=job_id() if restarted() and resume is None else None)
        resume = None if found is None else str(found.path)
    elif resume == AUTO:
        raise ResumeError("--resume auto continues the newest interrupted run of the settings given; give them", "resume")
    if resume is None:
        if config is None:
            raise UserError("nothing to train: give the training settings, or --resume RUN", "resume")
        return Plan(config)
    run = find_run(resume, runs_dir)
    return Plan(check_resumable(run), run, read_point(run))


def share_plan(peers: Alone, make: Callable[[], Plan]) -> Plan:
    """Rank 0's plan (or its error) on every process: a JSON message, then the resume point's tensors."""
    if peers.rank == 0:
        try:
            plan = make()
        except UserError as exc:
            broadcast_bytes(peers, json.dumps({"error": str(exc)}).encode())
            raise
        point = plan.point
        message = {
            "config": plan.config.to_dict(),
            "run": None if plan.run is None else str(plan.run.path),
            "point": None if point is None else {"step": point.step, "state": point.state},
        }
        broadcast_bytes(peers, json.dumps(message).encode())
        broadcast_bytes(peers, b"" if point is None else point.to_bytes())
        return plan
    message = json.loads(broadcast_bytes(peers, None))
    if "error" in message:
        raise SystemExit(2)  # rank 0 reports it
    blob = broadcast_bytes(peers, None)
    point = None if message["point"] is None else ResumePoint.from_bytes(message["point"]["step"], message["point"]["state"], blob)
    return Plan(RunConfig.from_dict(message["config"]), None if message["run"] is None else RunDir(message["run"]), point)


def train_job(
    config: RunConfig | None,
    runs_dir: str | Path,
    resume: str | None = None,
    init_from: str | Path | None = None,
    callbacks: Callable[[RunConfig], Sequence[Callback]] = lambda config: (),
    hooks: Hooks = NO_HOOKS,
    notice: Callable[[str], None] = lambda text: None,
    stopped: Callable[[str], None] = lambda text: None,
) -> tuple[str, RunDir | None]:
    """Train `config` (or resume the run `resume`) in this process or this torchrun rank -> (status, the run folder).

    Rank 0 gets the run folder, the others None. callbacks: rank 0's extra callbacks (a progress bar);
    hooks: rank 0's progress of a first decode; notice: where rank 0's warnings about the data go.
    stopped: where the line that says a job lost a process goes (the run, its last checkpoint, how to continue).
    JobStopped, after that line, when another process of the job is gone and a collective fails; when torchrun's
    SIGTERM comes first, the line is said from another thread and the process ends (core.training.stop_signal).
    """
    peers = join()
    run: RunDir | None = None
    stop = StopSignal(lambda: stopped(stopped_message(peers, run, "torchrun ended this process with SIGTERM")))
    with stop if peers.world_size > 1 else nullcontext():
        try:
            plan = share_plan(peers, lambda: plan_job(config, runs_dir, resume))
            config, run, first = plan.config, plan.run, peers.rank == 0
            experiment = preflight(config, init_from=init_from, hooks=hooks if first else NO_HOOKS)
            check_device(peers, experiment.device)
            barrier(peers)  # every process has its data: now the run folder may be made
            info = job_info(peers, plan) if first else {}
            if first and restarted() and plan.run is not None and plan.point is not None:  # (--max-restarts)
                notice(f"{who(peers)}: torchrun restarted the job; run {plan.run.path} resumes from step {plan.point.step}")
            if first:
                run = run or RunStore(runs_dir).create(config, **info)
            run = RunDir(broadcast_bytes(peers, str(run.path).encode() if first else None).decode())  # the others: for messages only
            if first:
                for warning in experiment.image_set.warnings:
                    notice(f"warning: {warning}")
                status = train_run(
                    config, run, callbacks=callbacks(config), experiment=experiment, init_from=init_from, peers=peers,
                    resume=plan.point, info=info,
                )  # fmt: skip
            else:
                trainer = make_trainer(config, experiment, init_from=init_from, peers=peers)
                if plan.point is not None:
                    plan.point.restore(trainer)
                status = trainer.fit()
            if status == "finished":  # leave together: once, in CI, a rank that left alone died (SIGABRT) at exit
                barrier(peers)  # (not after a failure: the others may be inside another collective)
            return status, run if first else None
        except Interrupted as exc:
            message = stopped_message(peers, run, exc)
            if not stop.claim():
                stop.wait_for_end()  # SIGTERM came first: the watcher says it and ends the process
            stopped(message)
            raise JobStopped(message) from exc
        finally:
            leave()


def job_info(peers: Alone, plan: Plan) -> dict[str, object]:
    """run.json's record of the job: its world size, torchrun's job id, and each resume (step, time, world size)."""
    info: dict[str, object] = {"world_size": peers.world_size}
    if job_id():
        info["job"] = job_id()
    if plan.run is not None and plan.point is not None:  # (a run created for the job and never trained starts as new)
        resumed = {"step": plan.point.step, "time": time.time(), "world_size": peers.world_size}
        info["resumed"] = [*plan.run.info().get("resumed", []), resumed]
    return info


def who(peers: Alone) -> str:
    return f"process {peers.rank} of {peers.world_size}"


def stopped_message(peers: Alone, run: RunDir | None, reason: BaseException | str) -> str:
    """One line: what stopped, where the run stands, and the command that continues it."""
    reason = str(reason).splitlines()[0] if str(reason) else type(reason).__name__
    if run is None:
        return f"{who(peers)}: another process of this torchrun job stopped ({reason}) before its run folder was made; start it again"
    saved = [c.step for c in run.checkpoints()] if run.path.exists() else []
    last = f"its last checkpoint is step {saved[-1]}" if saved else "it has no checkpoint yet"
    again = f"torchrun --nproc-per-node {peers.world_size} -m core train --resume {run.path}"
    then = "torchrun restarts the job, which resumes it (--max-restarts)" if restarts_left() > 0 else f"continue it with: {again}"
    return f"{who(peers)}: the job lost a process ({reason}); run {run.path} is interrupted and {last}; {then}"
