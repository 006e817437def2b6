"""Meta-training: the Trainer loop and background TrainingRuns."""

from core.training.run import MetricsLog, RunError, RunSnapshot, TrainingRun, active_run, get_run, latest_run, start_run, train_run
from core.training.trainer import Callback, Controls, Trainer

__all__ = [
    "Callback",
    "Controls",
    "MetricsLog",
    "RunError",
    "RunSnapshot",
    "Trainer",
    "TrainingRun",
    "active_run",
    "get_run",
    "latest_run",
    "start_run",
    "train_run",
]
