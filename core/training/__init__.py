"""Meta-training: the Trainer loop and background TrainingRuns.

Names are imported on first use (core.lazy): core.training.registry, which the dashboard asks on
every page, then loads without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

_EXPORTS = {
    "Callback": "core.training.trainer",
    "Controls": "core.training.trainer",
    "Trainer": "core.training.trainer",
    "MetricsLog": "core.training.run",
    "RunSnapshot": "core.training.run",
    "TrainingRun": "core.training.run",
    "start_run": "core.training.run",
    "train_run": "core.training.run",
    "RunError": "core.training.registry",
    "active_run": "core.training.registry",
    "get_run": "core.training.registry",
    "latest_run": "core.training.registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from core.training.registry import RunError, active_run, get_run, latest_run  # noqa: F401 - for type checkers and editors
    from core.training.run import MetricsLog, RunSnapshot, TrainingRun, start_run, train_run  # noqa: F401 - for type checkers and editors
    from core.training.trainer import Callback, Controls, Trainer  # noqa: F401 - for type checkers and editors
