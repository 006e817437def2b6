"""train_run: a RunConfig trained into its run folder (blocking). The CLI calls it; background runs do too."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from core.config import EpisodeShape, RunConfig
from core.device import describe_device
from core.errors import UserError
from core.evaluation import evaluate
from core.experiment import Experiment, checkpoint_metadata, load_learner, preflight
from core.hard_episodes import training_sampler
from core.learners import MetaLearner
from core.store import HEARTBEAT_S, RunDir
from core.training.live import MetricsLog, Record
from core.training.trainer import Callback, Controls, Trainer

METRICS_WRITE_INTERVAL_S = 2.0  # rewriting metrics.jsonl atomically more often buys nothing


class StoreCallback(Callback):
    """Keeps the MetricsLog and the run folder up to date: metrics, checkpoints."""

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
            self.save(trainer.learner, step)
        if time.monotonic() - self.last_heartbeat > HEARTBEAT_S:  # readers on other hosts see the run alive
            self.run.update_info(heartbeat=time.time())
            self.last_heartbeat = time.monotonic()

    def on_validation(self, trainer: Trainer, record: Record) -> None:
        self.log.add("val", record)
        self._write_metrics()

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


def train_run(
    config: RunConfig,
    run: RunDir,
    log: MetricsLog | None = None,
    callbacks: Sequence[Callback] = (),
    controls: Controls | None = None,
    experiment: Experiment | None = None,
    init_from: str | Path | None = None,
) -> str:
    """Train `config` into the run folder `run`; -> 'finished' or 'stopped'.

    experiment: the data, when the caller has checked it already (core.experiment.preflight);
    init_from: a checkpoint (.safetensors) of a compatible learner to start from (warm start).
    """
    train = config.train
    experiment = experiment or preflight(config)
    learner = experiment.new_learner(config.learner, seed=train.seed)
    if init_from is not None:
        loaded, _, _ = load_learner(Path(init_from).parent.parent, init_from)
        learner.load_state_dict(loaded.state_dict())
    sampler = training_sampler(experiment.pool("train", train.rotations), train)
    validate = validator(experiment, train.eval_shape, train.val_episodes, train.seed + 1) if train.val_every else None
    log = log or MetricsLog()
    image_set = experiment.image_set
    trainer = Trainer(learner, sampler, train, [StoreCallback(run, log, config), *callbacks], controls, validate)
    with run.hold():  # until the end: a reader can tell this run from one whose process died
        run.update_info(
            status="running",
            device=describe_device(experiment.device),
            input_shape=list(image_set.image_shape),
            dataset_source=image_set.source,
            parameters=sum(p.numel() for p in learner.parameters()),
        )
        status = trainer.fit()
        _, val_records = log.copy()
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
    init_from: str | Path | None = None,
    experiment: Experiment | None = None,
) -> tuple[str, str | None]:
    """train_run that records an exception in the run folder instead of raising -> (status, error or None)."""
    try:
        return train_run(config, run, log, callbacks, controls, experiment, init_from), None
    except Exception as exc:  # the run fails, the app does not: the error is shown to the user
        error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"  # a bug keeps its type name
        run.write_json("error.json", {"error": error, "traceback": traceback.format_exc()})
        run.update_info(status="failed", error=error)
        return "failed", error
