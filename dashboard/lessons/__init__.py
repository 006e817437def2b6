"""The Learn section's lessons in teaching order, and the glue between a lesson's state and its link.

A link is applied once, when its query string is new to the session (first open, or a pasted
link); after that the page writes the state back to the URL on every run, so the address bar
always holds a link to what is on screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from core.store import CheckpointError, RunStore
from dashboard import share, state
from dashboard.i18n import STRINGS, register, text
from dashboard.lessons import episodes, maml, matching_relation, metric, protonet, tasks
from dashboard.lessons.kit import Context, Lesson, forget_widgets, is_seeded
from dashboard.share import EPISODE_CONTROLS, EpisodeLink, SharedView

LESSONS: dict[str, Lesson] = {
    lesson.key: lesson for lesson in (episodes.LESSON, metric.LESSON, protonet.LESSON, matching_relation.LESSON, maml.LESSON, tasks.LESSON)
}
SCHEMAS = {key: lesson.schema for key, lesson in LESSONS.items()}

TEXT = register(
    "links",
    {
        "no_run": (
            "The link names run '{run}', which is not in {folder}; using an untrained learner instead.",
            "链接中的运行 '{run}' 不在 {folder} 中，改用未训练的学习器。",
        ),
        "seed": ("episode seed", "episode 随机种子"),
        "n": ("N", "N"),
        "k": ("K", "K"),
        "q": ("Q", "Q"),
    },
)


def follow_link(query: Mapping[str, str]) -> list[str]:
    """Apply the URL's view when it is new to this session; returns what in it was ignored, and why."""
    key = share.canonical(query)
    if key == state.share_applied():
        return []
    state.set_share_applied(key)
    view, problems = share.decode(query, SCHEMAS)
    if view is not None:
        problems += apply(view)
    return problems


def apply(view: SharedView) -> list[str]:
    """Make the session show `view`; returns problems (a run the link names that is not here)."""
    state.set_lesson(view.lesson)
    state.set_lang(view.lang)
    state.set_lesson_params({**state.lesson_params(), view.lesson: dict(view.params)})
    state.set_hidden_controls(view.hide)
    state.set_playground(None)
    state.set_playing(False)
    problems = []
    if (ep := view.episode) is not None:
        state.set_data_choice(state.DataChoice(ep.dataset, ep.data_dir, state.data_choice().image_size))
        state.set_split(ep.split)
        state.set_shape(ep.shape)
        state.set_episode_seed(ep.seed)
        state.set_episode(ep.spec)  # None: the lesson draws it from the seed
    if view.learner is not None:
        try:
            run = RunStore(state.runs_dir()).get(view.learner)
            state.set_learner_ref(state.LearnerRef(str(run.path), None, run.config().learner.method))
        except CheckpointError:
            problems.append(TEXT("no_run", run=view.learner, folder=state.runs_dir()))
            state.set_learner_ref(state.LearnerRef())
    forget_widgets(LESSONS[view.lesson])
    st.session_state.pop("ln_lesson", None)
    return problems


def open_lesson(key: str) -> None:
    """The student picked another lesson: a link's hidden controls belonged to the one it opened."""
    if key != state.lesson():
        state.set_lesson(key)
        state.set_hidden_controls(frozenset())


def picked() -> None:
    """on_change of the lesson picker; clicking the selected lesson deselects it, so it is selected again."""
    key = st.session_state.get("ln_lesson")
    if key is None:
        st.session_state["ln_lesson"] = state.lesson()
    else:
        open_lesson(key)


def go_to(key: str) -> None:
    """on_click of Previous / Next."""
    open_lesson(key)
    st.session_state["ln_lesson"] = key


def current_view(lesson: Lesson) -> SharedView:
    """What the session shows now, as a SharedView (the episode only for lessons that use one)."""
    episode = None
    if lesson.schema.episode and (spec := state.episode()) is not None:
        data, shape = state.data_choice(), state.shape()
        episode = EpisodeLink(data.dataset, data.data_dir, state.split(), state.episode_seed(), shape, None if is_seeded(spec) else spec)
    ref = state.learner_ref()
    learner = Path(ref.run_dir).name if ref.run_dir and lesson.schema.episode else None
    params = state.lesson_params().get(lesson.key, {})
    return SharedView(lesson.key, state.lang(), params, state.hidden_controls(), episode, learner)


def write_link(query: dict[str, str]) -> None:
    """Put `query` in the address bar (no rerun) unless it is there already."""
    key = share.canonical(query)
    if key != share.canonical(st.query_params.to_dict()):
        st.query_params.from_dict(query)
    state.set_share_applied(key)


def control_label(lesson: Lesson, name: str) -> str:
    """A hideable control's label in the reader's language."""
    return (
        text(f"links.{name}") if name in EPISODE_CONTROLS else text(f"{lesson.key}.{name}") if f"{lesson.key}.{name}" in STRINGS else name
    )


def context(lesson: Lesson) -> Context:
    return Context(lesson, state.hidden_controls())
