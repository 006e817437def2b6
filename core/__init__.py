"""MetaScope engine: datasets, episodes, meta-learners, training, evaluation and analysis.

No UI here: the dashboard and the command line (python -m core) both drive this package.
The names below are imported on first use: `import core.config` stays light (no torch), which lets
the dashboard draw its first page before the engine is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

_EXPORTS = {
    "EpisodeShape": "core.config",
    "LearnerConfig": "core.config",
    "RunConfig": "core.config",
    "TrainConfig": "core.config",
    "DATASETS": "core.data",
    "ClassSplit": "core.data",
    "DataError": "core.data",
    "ImageSet": "core.data",
    "load_dataset": "core.data",
    "split_classes": "core.data",
    "describe_device": "core.device",
    "resolve_device": "core.device",
    "ClassPool": "core.episodes",
    "Episode": "core.episodes",
    "EpisodeError": "core.episodes",
    "EpisodeSampler": "core.episodes",
    "build_episode": "core.episodes",
    "EvalResult": "core.evaluation",
    "evaluate": "core.evaluation",
    "Experiment": "core.experiment",
    "load_learner": "core.experiment",
    "LEARNERS": "core.learners",
    "MetaLearner": "core.learners",
    "make_learner": "core.learners",
    "CheckpointError": "core.store",
    "RunDir": "core.store",
    "RunStore": "core.store",
    "Trainer": "core.training",
    "TrainingRun": "core.training",
    "start_run": "core.training",
    "train_run": "core.training",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig  # noqa: F401 - for type checkers and editors
    from core.data import DATASETS, ClassSplit, DataError, ImageSet, load_dataset, split_classes  # noqa: F401 - for type checkers and editors
    from core.device import describe_device, resolve_device  # noqa: F401 - for type checkers and editors
    from core.episodes import ClassPool, Episode, EpisodeError, EpisodeSampler, build_episode  # noqa: F401 - for type checkers and editors
    from core.evaluation import EvalResult, evaluate  # noqa: F401 - for type checkers and editors
    from core.experiment import Experiment, load_learner  # noqa: F401 - for type checkers and editors
    from core.learners import LEARNERS, MetaLearner, make_learner  # noqa: F401 - for type checkers and editors
    from core.store import CheckpointError, RunDir, RunStore  # noqa: F401 - for type checkers and editors
    from core.training import Trainer, TrainingRun, start_run, train_run  # noqa: F401 - for type checkers and editors
