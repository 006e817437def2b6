"""What every lesson uses: the Lesson record, its settings as controls a link can fix, the episode, learners, the exercise box."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import streamlit as st

from core.config import EpisodeShape, LearnerConfig
from core.data import ImageSet
from core.episodes import Episode, EpisodeSpec, draw_spec
from core.learners import LEARNERS, MetaLearner, make_learner
from core.store import CheckpointError, RunDir, RunStore
from dashboard import errors, inputs, loaders, state
from dashboard.i18n import register
from dashboard.share import EPISODE_CONTROLS, LinkSchema

UNTRAINED_SEED = 0  # untrained learners start from the same weights in every session and test

TEXT = register(
    "kit",
    {
        "fixed": ("fixed by the link", "由链接固定"),
        "try": ("Try this", "动手试试"),
        "not_yet": ("Not yet: keep trying.", "还没有完成，继续尝试。"),
        "seed": ("Episode seed", "episode 随机种子"),
        "n": ("N (classes)", "N（类别数）"),
        "k": ("K (shots per class)", "K（每类样本数）"),
        "q": ("Q (queries per class)", "Q（每类查询数）"),
        "redraw": ("Draw another", "换一个 episode"),
        "untrained": (
            "an untrained {method} (its weights are random: train one on the Train page)",
            "未训练的 {method}（权重是随机的；可在 Train 页面训练一个）",
        ),
        "run": ("run {run} ({method}, trained)", "运行 {run}（{method}，已训练）"),
        "learner_is": ("Learner: {what}.", "学习器：{what}。"),
        "no_method": (
            "The {method} learner is not part of this engine yet, so this part of the lesson is not available.",
            "当前引擎还没有 {method} 学习器，这部分内容暂不可用。",
        ),
    },
)


@dataclass(frozen=True)
class Lesson:
    """One step of the guided page: its key (in links), title, settings, and how it draws itself."""

    key: str
    title: Callable[[], str]
    schema: LinkSchema
    render: Callable[[Context], None]


@dataclass(frozen=True)
class Context:
    """A lesson's settings now and which of them a link hid."""

    lesson: Lesson
    hidden: frozenset[str]

    def value(self, name: str) -> Any:
        return state.lesson_params().get(self.lesson.key, {}).get(name, self.lesson.schema.params[name].default)

    def set(self, name: str, value: Any) -> None:
        params = state.lesson_params()
        state.set_lesson_params({**params, self.lesson.key: {**params.get(self.lesson.key, {}), name: value}})

    def control(self, name: str, make: Callable[..., Any], label: str, **kwargs: Any) -> Any:
        """The widget for setting `name` (key ln_<lesson>_<name>), or its value as text when a link hid it."""
        value = self.value(name)
        if name in self.hidden:
            shown = f"`{self.lesson.schema.params[name].format(value)}`"  # as the link spells it
            if "format_func" in kwargs:
                shown = f"{kwargs['format_func'](value)} ({shown})"
            st.markdown(f"**{label}:** {shown} :material/lock: {TEXT('fixed')}")
            return value
        chosen = make(label, key=inputs.keyed(widget_key(self.lesson.key, name), value), **kwargs)
        if chosen != value:
            self.set(name, chosen)
        return chosen

    def clamp(self, name: str, high: int) -> int:
        """The int setting `name` lowered to `high` where the episode has fewer items (a link may ask for more)."""
        value = int(self.value(name))
        if value > high:
            self.set(name, high)
            st.session_state.pop(widget_key(self.lesson.key, name), None)
        return min(value, high)

    def values(self) -> dict[str, Any]:
        return {name: self.value(name) for name in self.lesson.schema.params}


def widget_key(lesson: str, name: str) -> str:
    return f"ln_{lesson}_{name}"


def forget_widgets(lesson: Lesson) -> None:
    """Drop the lesson's widget values so they are seeded again from state (after a link changed it)."""
    for name in (*lesson.schema.params, *EPISODE_CONTROLS, "lang"):
        st.session_state.pop(widget_key(lesson.key, name) if name in lesson.schema.params else f"ln_{name}", None)


@contextmanager
def exercise(task: str) -> Iterator[None]:
    """The 'try this' box: the task, then whatever the lesson draws inside (inputs, then verdict())."""
    with st.container(border=True, key="ln_exercise"):
        st.markdown(f"#### :material/exercise: {TEXT('try')}")
        st.markdown(task)
        yield


def verdict(solved: bool, success: str, progress: str | None = None) -> None:
    """st.success once the lesson's check on the real numbers passes, else how far the student is."""
    if solved:
        st.success(success, icon=":material/check_circle:")
    else:
        st.caption(progress or TEXT("not_yet"))


# --- the episode ---------------------------------------------------------------------------------


@st.cache_data(max_entries=64, show_spinner=False)
def seeded_spec(choice: state.DataChoice, split: str, shape: EpisodeShape, seed: int) -> EpisodeSpec:
    """The episode a seed draws (what a link without ep= restores)."""
    return draw_spec(loaders.image_set(choice), loaders.class_split(choice).classes(split), shape, seed)


def episode_controls(ctx: Context, redraw: bool = True) -> tuple[ImageSet, EpisodeSpec, Episode]:
    """Seed and N/K/Q controls over the session's episode (the same one the other pages show); redraws on change."""
    choice = state.data_choice()
    with errors.reported():
        image_set = loaders.image_set(choice)
    shape, seed = state.shape(), state.episode_seed()
    cols = st.columns([1.2, 1, 1, 1, 1.2], vertical_alignment="bottom")
    numbers = {}
    for col, name, value, low in zip(
        cols[:4], EPISODE_CONTROLS, (seed, shape.n_way, shape.k_shot, shape.q_query), (0, 2, 1, 1), strict=True
    ):
        if name in ctx.hidden:
            col.markdown(f"**{TEXT(name)}:** `{value}` :material/lock:")
            numbers[name] = value
        else:
            numbers[name] = int(
                col.number_input(TEXT(name), min_value=low, max_value=10_000, step=1, key=inputs.keyed(f"ln_{name}", value))
            )
    if redraw and "seed" not in ctx.hidden:
        cols[4].button(TEXT("redraw"), key="ln_redraw", icon=":material/casino:", on_click=inputs.nudge, args=("ln_seed", 1))
    with errors.reported():
        wanted = EpisodeShape(numbers["n"], numbers["k"], numbers["q"])
        if state.episode() is None or (wanted, numbers["seed"]) != (shape, seed):
            spec = seeded_spec(choice, state.split(), wanted, numbers["seed"])
            state.set_shape(wanted)
            state.set_episode_seed(numbers["seed"])
            state.set_episode(spec)
        spec = state.episode()
        return image_set, spec, loaders.episode(choice, spec)


def is_seeded(spec: EpisodeSpec) -> bool:
    """Whether the seed and N/K/Q in state draw exactly `spec` (else a link must carry the episode itself)."""
    try:
        return spec == seeded_spec(state.data_choice(), state.split(), state.shape(), state.episode_seed())
    except Exception:  # a dataset that no longer loads: the link carries the episode to be safe
        return False


# --- learners ------------------------------------------------------------------------------------


@st.cache_resource(max_entries=16, show_spinner=False)
def untrained(method: str, in_channels: int, image_size: int, **settings: Any) -> MetaLearner:
    """A seeded untrained learner for inference, shared read-only (eval mode, no gradients)."""
    learner = make_learner(LearnerConfig(method=method, **settings), in_channels, image_size, seed=UNTRAINED_SEED)
    return learner.eval().requires_grad_(False)


def latest_run(method: str) -> Path | None:
    """The newest saved run of `method` in this session's runs folder that has a checkpoint, or None."""
    for run in RunStore(state.runs_dir()).runs():
        try:
            if run.config().learner.method == method and run.checkpoints():
                return run.path
        except CheckpointError:
            continue
    return None


def learner_of(method: str, image_set: ImageSet) -> tuple[MetaLearner | None, str, str]:
    """The latest trained `method` learner that fits the images, else an untrained one; words saying which;
    and where it came from (the run folder, or 'untrained'), for cache keys. None when the engine has no such method.
    """
    if method not in LEARNERS:
        return None, TEXT("no_method", method=method), ""
    c, h, _ = image_set.image_shape
    run = latest_run(method)
    if run is not None:
        try:
            learner = loaders.learner(state.LearnerRef(str(run), None, method))
            if (learner.in_channels, learner.image_size) == (c, h):
                return learner, TEXT("run", run=run.name, method=method), f"{run}@{RunDir(run).checkpoints()[-1].path.stat().st_mtime}"
        except CheckpointError:
            pass
    return untrained(method, c, h), TEXT("untrained", method=method), "untrained"


def session_learner(image_set: ImageSet) -> tuple[MetaLearner, str, str]:
    """The session's current learner when it fits the images, else the latest (or an untrained) ProtoNet; as learner_of."""
    ref = state.learner_ref()
    c, h, _ = image_set.image_shape
    try:
        current = loaders.learner(ref)
    except CheckpointError:
        current = None
    if current is not None and (current.in_channels, current.image_size) == (c, h):
        return current, TEXT("run", run=Path(ref.run_dir).name, method=ref.method), f"{ref.run_dir}@{ref.step}"
    learner, about, source = learner_of("protonet", image_set)
    return learner, about, source  # type: ignore[return-value]  # protonet is always registered


def with_settings(learner: MetaLearner, **changes: Any) -> MetaLearner:
    """A private copy of `learner` with some config fields changed (same weights): for a student's what-if."""
    twin = make_learner(replace(learner.config, **changes), learner.in_channels, learner.image_size)
    twin.load_state_dict(learner.state_dict())
    return twin.eval()
