"""Every session-state key the dashboard uses, with typed accessors.

Pages never touch st.session_state directly: they call these functions, so a key is named
once and its default lives in one place. Widget values vanish when their page is left, so
what must survive a page switch is copied into these plain keys.

Over 300 lines on purpose: one short accessor per key, all in one file, is the point of this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from core.config import EpisodeShape

if TYPE_CHECKING:  # core.episodes imports torch: the first page is drawn before it is loaded
    from core.episodes import EpisodeSpec

RUNS_DIR_DEFAULT = "runs"
RUNS_DIR_ENV = "METASCOPE_RUNS_DIR"  # where a deployment (or a test) keeps its runs
OMNIGLOT_ENV = "METASCOPE_OMNIGLOT"  # a default for the Omniglot data-dir input
ISOLATE_ENV = "METASCOPE_RUN_IN_PROCESS"  # 1: each training run in a child process (crash isolation)


@dataclass(frozen=True)
class DataChoice:
    """Which dataset the user works on."""

    dataset: str = "glyphs"
    data_dir: str | None = None
    image_size: int = 28


@dataclass(frozen=True)
class LearnerRef:
    """The current learner: a saved run's checkpoint (step None = latest), or untrained (run_dir None)."""

    run_dir: str | None = None
    step: int | None = None
    method: str = "protonet"


_DEFAULTS = {
    "ms_visitor": None,  # this browser's visitor id (dashboard/visitor.py): whose runs are "mine"
    "ms_data": DataChoice(),
    "ms_data_dirs": {},  # dataset -> the data folder last typed for it, so switching datasets back and forth keeps it
    "ms_split": "test",
    "ms_shape": EpisodeShape(5, 1, 5),
    "ms_episode_seed": 0,
    "ms_episode": None,  # EpisodeSpec | None
    "ms_swapping": False,  # an image was just swapped: the swap box stays open
    "ms_fixed_classes": None,  # classes picked by hand for the episode (N follows them), or None: drawn at random
    "ms_saved_episodes": {},  # name -> EpisodeSpec
    "ms_saved_episode_data": {},  # name -> the DataChoice its image indices belong to
    "ms_learner": LearnerRef(),
    "ms_run_id": None,  # id of the TrainingRun this session started or follows
    "ms_learner_at_start": None,  # the learner when this session started its run: still it when the run ends -> the run
    "ms_followed_run": None,  # the id of the last run of this visitor whose end was handled (made current or not)
    "ms_runs_dir": lambda: os.environ.get(RUNS_DIR_ENV, RUNS_DIR_DEFAULT),  # read per session, not at import
    "ms_train_form": {},  # the Train page's last settings, so a page switch keeps them
    "ms_evaluations": {},  # run_dir -> EvalResult of its last evaluation
    "ms_lang": "en",  # the dashboard's language: en | zh (kept in links as ?lang=zh)
    "ms_lang_from_url": False,  # the session's first run has read ?lang=
    "ms_lesson": "episodes",  # the Learn section's open lesson
    "ms_lesson_params": {},  # lesson setting name -> value (margin, loss, lr, ...), as a shared link carries them
    "ms_hidden_controls": frozenset(),  # lesson settings a shared link fixed and hid
    "ms_playground": None,  # core.playground.PlaygroundState of this session's 2-D playground
    "ms_playing": False,  # the playground animates
    "ms_share_applied": None,  # the query string last applied to or written from this session
    "ms_compare_runs": None,  # run ids the Every learner page compares (None: the visitor's newest)
}

APP_KEYS = frozenset(_DEFAULTS)  # the session keys the dashboard keeps itself, none of them a widget's


def init_state() -> None:
    """Fill missing keys with defaults (safe to call on every rerun)."""
    for key, value in _DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value() if callable(value) else value.copy() if isinstance(value, dict) else value


def _get(key: str):
    init_state()
    return st.session_state[key]


def _set(key: str, value) -> None:
    st.session_state[key] = value


def visitor() -> str | None:
    return _get("ms_visitor")


def set_visitor(value: str) -> None:
    _set("ms_visitor", value)


def data_choice() -> DataChoice:
    return _get("ms_data")


def set_data_choice(choice: DataChoice) -> None:
    if choice.data_dir:
        _set("ms_data_dirs", {**_get("ms_data_dirs"), choice.dataset: choice.data_dir})
    if choice != data_choice():
        _set("ms_data", choice)
        _set("ms_episode", None)  # an episode's indices belong to one dataset
        _set("ms_fixed_classes", None)


def data_dir_for(dataset: str) -> str | None:
    """The folder last used with `dataset` in this session (None: never)."""
    return _get("ms_data_dirs").get(dataset)


def split() -> str:
    return _get("ms_split")


def set_split(name: str) -> None:
    if name != split():
        _set("ms_split", name)
        _set("ms_episode", None)


def shape() -> EpisodeShape:
    return _get("ms_shape")


def set_shape(value: EpisodeShape) -> None:
    _set("ms_shape", value)


def episode_seed() -> int:
    return _get("ms_episode_seed")


def set_episode_seed(seed: int) -> None:
    _set("ms_episode_seed", int(seed))


def episode() -> EpisodeSpec | None:
    return _get("ms_episode")


def swapping() -> bool:
    """Whether the visitor has just swapped an image: the swap box stays open for the next one."""
    return bool(_get("ms_swapping"))


def set_swapping(on: bool) -> None:
    _set("ms_swapping", bool(on))


def set_episode(spec: EpisodeSpec | None) -> None:
    """Make `spec` the current episode; N, K and Q follow it (a saved, swapped or linked episode included)."""
    _set("ms_episode", spec)
    if spec is not None:
        _set("ms_shape", EpisodeShape(len(spec.class_ids), len(spec.support[0]), len(spec.query[0])))


def fixed_classes() -> tuple[int, ...] | None:
    return _get("ms_fixed_classes")


def set_fixed_classes(classes: tuple[int, ...] | None) -> None:
    _set("ms_fixed_classes", tuple(classes) if classes else None)


def saved_episodes() -> dict[str, EpisodeSpec]:
    return _get("ms_saved_episodes")


def save_episode(name: str, spec: EpisodeSpec, data: DataChoice | None = None) -> None:
    """Keep `spec` under `name`, with the dataset it indexes (default: the current one)."""
    _set("ms_saved_episodes", {**saved_episodes(), name: spec})
    _set("ms_saved_episode_data", {**_get("ms_saved_episode_data"), name: data or data_choice()})


def saved_episodes_here() -> dict[str, EpisodeSpec]:
    """The saved episodes that index the current dataset (the others cannot be shown on it)."""
    where = _get("ms_saved_episode_data")
    return {n: s for n, s in saved_episodes().items() if where.get(n, data_choice()) == data_choice()}


def learner_ref() -> LearnerRef:
    return _get("ms_learner")


def set_learner_ref(ref: LearnerRef) -> None:
    """The current learner. When its run trained on the session's dataset, the run's image size becomes the
    session's: every page then shows it, and feeds it, images of the size it learned on."""
    _set("ms_learner", ref)
    data = data_choice()
    if (size := image_size_for(data.dataset)) != data.image_size:
        set_data_choice(replace(data, image_size=size))


def image_size_for(dataset: str) -> int:
    """The image size the pages use for `dataset`: the current learner's, when its run trained on `dataset`; else
    the session's, while the dataset stays; else the dataset's own."""
    trained = trained_on(learner_ref())
    if trained is not None and trained[0] == dataset:
        return trained[1]
    if data_choice().dataset == dataset:
        return data_choice().image_size
    from core.data.registry import default_image_size  # (imports torch: not before a page needs it)

    return default_image_size(dataset)


def trained_on(ref: LearnerRef) -> tuple[str, int] | None:
    """(dataset, image size) of the learner's run; None for an untrained learner or a run without a readable config."""
    if ref.run_dir is None:
        return None
    from core.store import CheckpointError, RunDir

    try:
        train = RunDir(ref.run_dir).config().train
    except CheckpointError:
        return None
    return train.dataset, train.image_size


def set_learner_step(step: int | None) -> None:
    _set("ms_learner", replace(learner_ref(), step=step))


def run_id() -> str | None:
    return _get("ms_run_id")


def set_run_id(value: str | None) -> None:
    _set("ms_run_id", value)


def learner_at_start() -> LearnerRef | None:
    return _get("ms_learner_at_start")


def set_learner_at_start(ref: LearnerRef | None) -> None:
    _set("ms_learner_at_start", ref)


def followed_run() -> str | None:
    return _get("ms_followed_run")


def set_followed_run(run_id: str | None) -> None:
    _set("ms_followed_run", run_id)


def runs_dir() -> Path:
    return Path(_get("ms_runs_dir"))


def set_runs_dir(path: str | Path) -> None:
    _set("ms_runs_dir", str(path))


def isolate_runs() -> bool:
    """Train in a child process rather than a thread ($METASCOPE_RUN_IN_PROCESS=1).

    Off by default: measured here, a child process trains no faster while a page polls it (the
    browser's rendering takes the cores, not the server), starts 4-8 s slower and holds about
    1 GB more. It buys isolation: a crash or out-of-memory kill in training leaves the server up.
    """
    return os.environ.get(ISOLATE_ENV, "") not in ("", "0")


def default_omniglot_dir() -> str:
    """$METASCOPE_OMNIGLOT, or '' when unset."""
    return os.environ.get(OMNIGLOT_ENV, "")


def train_form() -> dict[str, Any]:
    """The Train page's last widget values (empty until the page has run)."""
    return _get("ms_train_form")


def set_train_form(values: dict[str, Any]) -> None:
    _set("ms_train_form", dict(values))


def evaluation(run_dir: str):
    """The last EvalResult computed for `run_dir` in this session, or None."""
    return _get("ms_evaluations").get(run_dir)


def set_evaluation(run_dir: str, result) -> None:
    _set("ms_evaluations", {**_get("ms_evaluations"), run_dir: result})


def lang() -> str:
    return _get("ms_lang")


def set_lang(value: str) -> None:
    _set("ms_lang", value)


def lang_from_url() -> bool:
    return _get("ms_lang_from_url")


def set_lang_from_url(done: bool) -> None:
    _set("ms_lang_from_url", done)


# --- the Learn section ---------------------------------------------------------------------------


def lesson() -> str:
    return _get("ms_lesson")


def set_lesson(key: str) -> None:
    _set("ms_lesson", key)


def lesson_params() -> dict[str, Any]:
    """Lesson settings chosen so far (a missing name means its default)."""
    return _get("ms_lesson_params")


def set_lesson_params(values: dict[str, Any]) -> None:
    _set("ms_lesson_params", dict(values))


def hidden_controls() -> frozenset[str]:
    return _get("ms_hidden_controls")


def set_hidden_controls(names: frozenset[str]) -> None:
    _set("ms_hidden_controls", frozenset(names))


def playground():
    """This session's core.playground.PlaygroundState, or None before the first use."""
    return _get("ms_playground")


def set_playground(value) -> None:
    _set("ms_playground", value)


def playing() -> bool:
    return _get("ms_playing")


def set_playing(value: bool) -> None:
    _set("ms_playing", bool(value))


def compare_runs() -> tuple[str, ...] | None:
    return _get("ms_compare_runs")


def set_compare_runs(run_ids: tuple[str, ...] | None) -> None:
    _set("ms_compare_runs", None if run_ids is None else tuple(run_ids))


def share_applied() -> str | None:
    return _get("ms_share_applied")


def set_share_applied(query: str | None) -> None:
    _set("ms_share_applied", query)
