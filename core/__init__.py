"""MetaScope engine: datasets, episodes, meta-learners, training, evaluation and analysis.

No UI here: the dashboard and the command line (python -m core) both drive this package.
"""

from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.data import DATASETS, ClassSplit, DataError, ImageSet, load_dataset, split_classes
from core.device import describe_device, resolve_device
from core.episodes import ClassPool, Episode, EpisodeError, EpisodeSampler, build_episode
from core.evaluation import EvalResult, evaluate
from core.experiment import Experiment, load_learner
from core.learners import LEARNERS, MetaLearner, make_learner
from core.store import CheckpointError, RunDir, RunStore
from core.training import Trainer, TrainingRun, start_run, train_run

__all__ = [
    "DATASETS",
    "LEARNERS",
    "CheckpointError",
    "ClassPool",
    "ClassSplit",
    "DataError",
    "Episode",
    "EpisodeError",
    "EpisodeSampler",
    "EpisodeShape",
    "EvalResult",
    "Experiment",
    "ImageSet",
    "LearnerConfig",
    "MetaLearner",
    "RunConfig",
    "RunDir",
    "RunStore",
    "TrainConfig",
    "Trainer",
    "TrainingRun",
    "build_episode",
    "describe_device",
    "evaluate",
    "load_dataset",
    "load_learner",
    "make_learner",
    "resolve_device",
    "split_classes",
    "start_run",
    "train_run",
]
