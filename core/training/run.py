"""train_run: a RunConfig trained into its run folder (blocking). The CLI calls it; background runs do too."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.allocator import keep_freed_memory
from core.atomic import StorageError
from core.config import EpisodeShape, RunConfig
from core.crashlog import log_traceback
from core.device import describe_device
from core.errors import explain, one_line
from core.evaluation import evaluate
from core.experiment import Experiment, checkpoint_metadata, preflight, warm_start
from core.hard_episodes import training_sampler
from core.learners import MetaLearner
from core.store import HEARTBEAT_S, RunBusyError, RunDir
from core.training.distributed import Interrupted
from core.training.guards import FiniteGuard
from core.training.live import MetricsLog, Record
from core.training.resume import ResumePoint, records_until, save_train_state
from core.training.trainer import Alone, Callback, Controls, Trainer

METRICS_WRITE_INTERVAL_S = 2.0  # rewriting metrics.jsonl atomically more often buys nothing


class StoreCallback(Callback):
    """Keeps the MetricsLog and the run folder up to date: metrics, checkpoints and the state to resume from."""

    def __init__(self, run: RunDir, log: MetricsLog, config: RunConfig):
        self.run, self.log, self.config = run, log, config
        self.last_write = self.last_heartbeat = 0.0
        self.saved_steps: list[int] = []

    def on_log(self, trainer: Trainer, record: Record) -> None:
        self.log.add("train", record)
        if time.monotonic() - self.last_write > METRICS_WRITE_INTERVAL_S:
            self._write_metrics()

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if step % self.config.train.checkpoint_every == 0:
            self.save(trainer, step)
        if time.monotonic() - self.last_heartbeat > HEARTBEAT_S:  # readers on other hosts see the run alive
            self.run.update_info(heartbeat=time.time())
            self.last_heartbeat = time.monotonic()

    def on_validation(self, trainer: Trainer, record: Record) -> None:
        self.log.add("val", record)
        self._write_metrics()

    def on_end(self, trainer: Trainer, status: str) -> None:
        if trainer.step not in self.saved_steps:
            self.save(trainer, trainer.step)  # a stopped run keeps its last state
        self._write_metrics()

    def save(self, trainer: Trainer, step: int) -> None:
        """Metrics, weights, then the training state: a run resumed from `step` finds all three."""
        self._write_metrics()
        self.run.save_checkpoint(trainer.learner.state_dict(), step, checkpoint_metadata(self.config, trainer.learner))
        save_train_state(self.run, trainer)
        self.saved_steps.append(step)

    def _write_metrics(self) -> None:
        self.run.write_metrics(self.log.records())
        self.last_write = time.monotonic()


def validator(experiment: Experiment, shape: EpisodeShape, episodes: int, seed: int) -> Callable[[MetaLearner], Record] | None:
    """A function learner -> {'val_acc', 'val_ci'} on fixed validation episodes.

    Small user datasets leave few validation classes: N and Q shrink to fit, and validation
    is skipped (None) when not even a 2-way 1-shot 1-query episode fits.
    """
    pool = experiment.pool("val")
    n_way = min(shape.n_way, pool.n_classes)
    q_query = min(shape.q_query, int(pool.counts.min()) - shape.k_shot)
    if n_way < 2 or q_query < 1:
        return None
    fitted = EpisodeShape(n_way, shape.k_shot, q_query)

    def validate(learner: MetaLearner) -> Record:
        result = evaluate(learner, pool, fitted, episodes, seed)
        return {"val_acc": result.accuracy, "val_ci": result.ci95}

    return validate


def make_trainer(
    config: RunConfig,
    experiment: Experiment,
    callbacks: Sequence[Callback] = (),
    controls: Controls | None = None,
    validate: Callable[[MetaLearner], Record] | None = None,
    init_from: str | Path | None = None,
    peers: Alone | None = None,
) -> Trainer:
    """The seeded learner (warm-started from `init_from` when given) and episode stream of `config`, in a Trainer."""
    keep_freed_memory()  # every process that trains passes here: freed activations are reused, not unmapped
    train = config.train
    learner = experiment.new_learner(config.learner, seed=train.seed)
    if init_from is not None:
        learner.load_state_dict(warm_start(config.learner, experiment.image_set.image_shape, init_from))
    sampler = training_sampler(experiment.pool("train", train.rotations), train)  # within-alphabet, split drawers, augmentation
    # the guard on every process of a job: their weights are equal, so all stop at the same step
    return Trainer(learner, sampler, train, [FiniteGuard(train), *callbacks], controls, validate, peers=peers)


def train_run(
    config: RunConfig,
    run: RunDir,
    log: MetricsLog | None = None,
    callbacks: Sequence[Callback] = (),
    controls: Controls | None = None,
    experiment: Experiment | None = None,
    init_from: str | Path | None = None,
    peers: Alone | None = None,
    resume: ResumePoint | None = None,
    info: Mapping[str, Any] | None = None,
) -> str:
    """Train `config` into the run folder `run`; -> 'finished' or 'stopped'.

    experiment: the data, when the caller has checked it already (core.experiment.preflight);
    init_from: a checkpoint (.safetensors) of a compatible learner to start from (warm start);
    peers: the other processes of a torchrun job (core.training.distributed.Ranks), this one being rank 0;
    resume: where the run stopped (core.training.resume.read_point): training continues from there, the
    metrics recorded up to it kept; info: more for run.json (the job's world size, its resumes).
    An exception (a diverged loss, a full disk, a bug) marks the run failed with the reason and is raised again;
    the checkpoints written before it stay.
    """
    train = config.train
    log = log or MetricsLog()
    try:
        experiment = experiment or preflight(config, init_from=init_from)
        validate = validator(experiment, train.eval_shape, train.val_episodes, train.seed + 1) if train.val_every else None
        trainer = make_trainer(config, experiment, [StoreCallback(run, log, config), *callbacks], controls, validate, init_from, peers)
        if resume is not None:
            resume.restore(trainer)
            for kind, record in records_until(run, resume.step):  # later records are trained again
                log.add(kind, record)
    except Exception as exc:
        mark_failed(run, exc)
        raise
    image_set, learner = experiment.image_set, trainer.learner
    try:
        with run.hold():  # until the end: a reader can tell this run from one whose process died
            run.update_info(
                status="running",
                device=describe_device(experiment.device),
                input_shape=list(image_set.image_shape),
                dataset_source=image_set.source,
                parameters=sum(p.numel() for p in learner.parameters()),
                **(info or {}),
            )
            status = trainer.fit()
            _, val_records = log.copy()
            final = {"final_step": trainer.step, "finished": time.time()}
            if val_records:
                final["final_val_acc"] = val_records[-1]["val_acc"]
            run.update_info(status=status, **final)
    except RunBusyError:
        raise  # another process trains it: its status is not ours to change
    except Interrupted:
        raise  # a torchrun job lost a process: the run, whose lock is now released, reads 'interrupted' (resumable)
    except Exception as exc:
        mark_failed(run, exc, log)
        raise
    return status


def train_reporting_errors(
    config: RunConfig,
    run: RunDir,
    log: MetricsLog,
    callbacks: Sequence[Callback],
    controls: Controls,
    init_from: str | Path | None = None,
    experiment: Experiment | None = None,
) -> tuple[str, str | None]:
    """train_run that records an exception in the run folder instead of raising -> (status, error or None)."""
    try:
        return train_run(config, run, log, callbacks, controls, experiment, init_from), None
    except Exception as exc:  # the run fails, the app does not: the error is shown to the user
        info = run.info()  # train_run has marked it failed with the error worded (and a bug's traceback logged)
        error = info["error"] if info.get("status") == "failed" and "error" in info else describe_failure(exc)
        try:
            run.write_json("error.json", {"error": error, "traceback": traceback.format_exc()})
        except StorageError:
            pass  # a full disk: run.json (marked by train_run) holds the error
        return "failed", error


def describe_failure(exc: BaseException) -> str:
    """One line for a run's error: the user's problem as it is worded, a bug with its type (the traceback is logged)."""
    known = explain(exc)
    if known is not None or isinstance(exc, StorageError):
        return one_line(str(known or exc))
    log = log_traceback(exc, "training run")
    return one_line(f"{type(exc).__name__}: {exc}") + (f" (traceback in {log})" if log else "")


def mark_failed(run: RunDir, exc: BaseException, log: MetricsLog | None = None) -> None:
    """Record in the run folder that it failed and why, as far as the disk allows (the metrics so far first)."""
    try:
        if log is not None:
            run.write_metrics(log.records())
    except StorageError:
        pass  # a full disk: the status below still fits in run.json's reserved block
    try:
        run.update_info(status="failed", error=describe_failure(exc), finished=time.time())
    except (StorageError, OSError):
        pass  # not even in place: the run then reads 'interrupted' once this process ends
