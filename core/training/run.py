"""A training run on disk and in a background thread, with a snapshot for pollers (the dashboard)."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.config import EpisodeShape, RunConfig
from core.device import describe_device
from core.evaluation import evaluate
from core.experiment import Experiment, checkpoint_metadata, load_learner
from core.hard_episodes import training_sampler
from core.learners import MetaLearner
from core.store import DEFAULT_RUNS_DIR, RunDir, RunStore
from core.training.registry import RunError, active_run, get_run, latest_run, register  # noqa: F401 - re-exported
from core.training.trainer import Callback, Controls, Record, Trainer

METRICS_WRITE_INTERVAL_S = 2.0  # rewriting metrics.jsonl atomically more often buys nothing


class MetricsLog:
    """Training and validation records behind a lock: written by the trainer thread, read by pollers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._train: list[Record] = []
        self._val: list[Record] = []

    def add(self, kind: str, record: Record) -> None:
        with self._lock:
            (self._train if kind == "train" else self._val).append(record)

    def copy(self) -> tuple[list[Record], list[Record]]:
        with self._lock:
            return list(self._train), list(self._val)

    def records(self) -> list[Record]:
        """All records tagged with their kind, as metrics.jsonl holds them."""
        train, val = self.copy()
        return [{"kind": "train", **r} for r in train] + [{"kind": "val", **r} for r in val]


@dataclass(frozen=True)
class RunSnapshot:
    """What a poller needs to draw a run's progress; plain data."""

    run_id: str
    run_dir: str
    status: str  # preparing | running | paused | stopping | finished | stopped | failed
    step: int
    total: int
    train: list[Record]
    val: list[Record]
    device: str
    error: str | None = None
    checkpoints: list[int] = field(default_factory=list)

    @property
    def episodes_per_s(self) -> float:
        return self.train[-1]["episodes_per_s"] if self.train else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.episodes_per_s
        return (self.total - self.step) / rate if rate > 0 and self.status in ("running", "paused") else None

    @property
    def done(self) -> bool:
        return self.status in ("finished", "stopped", "failed")


class StoreCallback(Callback):
    """Keeps the MetricsLog and the run folder up to date: metrics, checkpoints, status."""

    def __init__(self, run: RunDir, log: MetricsLog, config: RunConfig):
        self.run, self.log, self.config = run, log, config
        self.last_write = 0.0
        self.saved_steps: list[int] = []

    def on_log(self, trainer: Trainer, record: Record) -> None:
        self.log.add("train", record)
        if time.monotonic() - self.last_write > METRICS_WRITE_INTERVAL_S:
            self._write_metrics()

    def on_validation(self, trainer: Trainer, record: Record) -> None:
        self.log.add("val", record)
        self._write_metrics()

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if step % self.config.train.checkpoint_every == 0:
            self.save(trainer.learner, step)

    def on_end(self, trainer: Trainer, status: str) -> None:
        if trainer.step not in self.saved_steps:
            self.save(trainer.learner, trainer.step)  # a stopped run keeps its last state
        self._write_metrics()

    def save(self, learner: MetaLearner, step: int) -> None:
        self.run.save_checkpoint(learner.state_dict(), step, checkpoint_metadata(self.config, learner))
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


def seeded_learner(experiment: Experiment, config: RunConfig) -> MetaLearner:
    """A fresh learner whose initial weights depend only on the run's seed (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        return experiment.new_learner(config.learner)


def train_run(
    config: RunConfig,
    run: RunDir,
    log: MetricsLog | None = None,
    callbacks: Sequence[Callback] = (),
    controls: Controls | None = None,
    experiment: Experiment | None = None,
    init_from: str | Path | None = None,
) -> str:
    """Train `config` into the run folder `run`; -> 'finished' or 'stopped'. Used by the CLI and TrainingRun.

    init_from: a checkpoint (.safetensors) of a compatible learner to start from (warm start).
    """
    train = config.train
    experiment = experiment or Experiment.from_config(train)
    learner = seeded_learner(experiment, config)
    if init_from is not None:
        loaded, _, _ = load_learner(Path(init_from).parent.parent, init_from)
        learner.load_state_dict(loaded.state_dict())
    sampler = training_sampler(experiment.pool("train", train.rotations), train)
    validate = validator(experiment, train.eval_shape, train.val_episodes, train.seed + 1) if train.val_every else None
    log = log or MetricsLog()
    image_set = experiment.image_set
    run.update_info(
        status="running",
        device=describe_device(experiment.device),
        input_shape=list(image_set.image_shape),
        dataset_source=image_set.source,
        parameters=sum(p.numel() for p in learner.parameters()),
    )
    trainer = Trainer(learner, sampler, train, [StoreCallback(run, log, config), *callbacks], controls, validate)
    status = trainer.fit()
    train_records, val_records = log.copy()
    final = {"final_step": trainer.step, "finished": time.time()}
    if val_records:
        final["final_val_acc"] = val_records[-1]["val_acc"]
    run.update_info(status=status, **final)
    return status


def train_reporting_errors(
    config: RunConfig,
    run: RunDir,
    log: MetricsLog,
    callbacks: Sequence[Callback],
    controls: Controls,
    init_from: str | Path | None,
) -> tuple[str, str | None]:
    """train_run that records an exception in the run folder instead of raising -> (status, error or None)."""
    try:
        return train_run(config, run, log, callbacks, controls, init_from=init_from), None
    except Exception as exc:  # the run fails, the app does not: the error is shown to the user
        error = f"{type(exc).__name__}: {exc}"
        run.write_json("error.json", {"error": error, "traceback": traceback.format_exc()})
        run.update_info(status="failed", error=error)
        return "failed", error


class TrainingRun:
    """Trains a RunConfig in a daemon thread. pause(), resume(), stop(); snapshot() for pollers.

    See core.training.process_run.ProcessRun for the same in a process of its own.
    """

    def __init__(self, config: RunConfig, runs_dir: str | Path = DEFAULT_RUNS_DIR, init_from: str | Path | None = None):
        self.config = config
        self.store = RunStore(runs_dir)
        self.run = self.store.create(config)
        self.log = MetricsLog()
        self.controls = Controls()
        self.init_from = init_from
        self._status = "preparing"
        self._step = 0
        self._error: str | None = None
        self._device = ""
        self._thread = threading.Thread(target=self._main, name=f"train-{self.run.id}", daemon=True)

    @property
    def id(self) -> str:
        return self.run.id

    def start(self) -> TrainingRun:
        self._thread.start()
        return self

    def _main(self) -> None:
        progress = _Progress(self)
        self._status, self._error = train_reporting_errors(self.config, self.run, self.log, [progress], self.controls, self.init_from)

    def pause(self) -> None:
        if self._status == "running":
            self.controls.running.clear()
            self._status = "paused"

    def resume(self) -> None:
        if self._status == "paused":
            self._status = "running"
            self.controls.running.set()

    def stop(self) -> None:
        if not self.snapshot().done:
            self._status = "stopping"
            self.controls.stop.set()
            self.controls.running.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def snapshot(self) -> RunSnapshot:
        train, val = self.log.copy()
        return RunSnapshot(
            run_id=self.id,
            run_dir=str(self.run.path),
            status=self._status,
            step=self._step,
            total=self.config.train.episodes,
            train=train,
            val=val,
            device=self._device,
            error=self._error,
        )


class _Progress(Callback):
    """Mirrors the trainer's step and device into its TrainingRun."""

    def __init__(self, owner: TrainingRun):
        self.owner = owner

    def on_start(self, trainer: Trainer) -> None:
        self.owner._device = describe_device(trainer.sampler.pool.device)
        if self.owner._status == "preparing":
            self.owner._status = "running"

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        self.owner._step = step


def start_run(
    config: RunConfig, runs_dir: str | Path = DEFAULT_RUNS_DIR, init_from: str | Path | None = None, isolate: bool = False
) -> TrainingRun:
    """Start a run in the background and register it process-wide, so a browser refresh finds it.

    isolate: train in a child process (ProcessRun) rather than a thread, so that a crash in training
    leaves this process up; costs the child's start-up (importing torch, a few seconds).
    One run trains at a time: a second start while one is active raises RunError.
    """
    from core.training.process_run import ProcessRun  # it builds on this module

    return register(lambda: (ProcessRun if isolate else TrainingRun)(config, runs_dir, init_from)).start()
