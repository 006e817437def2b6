"""The Episodes page's controls: split, N, K, Q and seed always show the episode on screen; classes picked by hand set N.

The controls are drawn from state on every run and write to it only through draw(), in their callbacks: a value
that does not fit (N larger than the split) is reported and the controls go back to the episode still shown,
and a control hidden for a while (a dataset without its folder yet) comes back showing the episode, not its
own default.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.config import EpisodeShape
from core.data import SPLIT_NAMES, ImageSet
from core.episodes import draw_spec
from dashboard import loaders, state
from dashboard.episode_view import class_label
from dashboard.errors import USER_ERRORS, ui_message
from dashboard.i18n import tr
from dashboard.labels import SPLITS

PROBLEM = "ep_problem"  # a callback's message, shown once under the controls
MAX_PICKED = 20  # classes picked by hand: an episode still readable on one screen


def draw(split: str, n: int, k: int, q: int, seed: int, fixed: Sequence[int] | None = None) -> str | None:
    """Draw the episode these settings describe and make it current (picked classes kept while N equals their
    number); returns what to change, in words, when they do not fit (then nothing changes)."""
    try:
        choice = state.data_choice()
        image_set, classes = loaders.image_set(choice), loaders.class_split(choice).classes(split)
        shape = EpisodeShape(int(n), int(k), int(q))
        fixed = tuple(fixed) if fixed and len(fixed) == shape.n_way and set(fixed) <= set(classes) else None
        spec = draw_spec(image_set, classes, shape, int(seed), fixed_classes=fixed)
    except USER_ERRORS as exc:
        return ui_message(exc)
    state.set_split(split)
    state.set_episode_seed(int(seed))
    state.set_fixed_classes(fixed)
    state.set_episode(spec)  # N, K, Q follow it
    return None


def _changed(seed_step: int = 0) -> None:
    """on_change of every control (and New episode): all of them read at once, so two changes never clash."""
    ss = st.session_state
    ss[PROBLEM] = draw(ss["ep_split"], ss["ep_n"], ss["ep_k"], ss["ep_q"], int(ss["ep_seed"]) + seed_step, state.fixed_classes())


def episode_controls() -> None:
    """Split, N, K, Q, seed and New episode, showing the current episode; a problem of the last change below them."""
    shape = state.shape()
    shown = {"ep_split": state.split(), "ep_n": shape.n_way, "ep_k": shape.k_shot, "ep_q": shape.q_query, "ep_seed": state.episode_seed()}
    for key, value in shown.items():
        st.session_state[key] = value
    cols = st.columns([1.2, 1, 1, 1, 1, 1.3], vertical_alignment="bottom")
    cols[0].selectbox(tr("Split"), SPLIT_NAMES, key="ep_split", format_func=lambda s: tr(SPLITS[s]), on_change=_changed)
    cols[1].number_input(tr("N (classes)"), min_value=1, step=1, key="ep_n", on_change=_changed)
    cols[2].number_input(tr("K (shots)"), min_value=1, step=1, key="ep_k", on_change=_changed)
    cols[3].number_input(tr("Q (queries)"), min_value=1, step=1, key="ep_q", on_change=_changed)
    cols[4].number_input(tr("Seed"), min_value=0, step=1, key="ep_seed", on_change=_changed)
    cols[5].button(tr("New episode"), key="ep_new", on_click=_changed, args=(1,), icon=":material/casino:", type="primary")
    if problem := st.session_state.pop(PROBLEM, None):
        st.error(problem, icon=":material/error:")


def class_picker(image_set: ImageSet, classes: Sequence[int]) -> None:
    """Classes picked by hand (at most MAX_PICKED, no select-all): N becomes their number; they stay while K, Q or the seed change."""
    pickable = list(classes)
    if image_set.class_groups:
        groups = sorted({image_set.class_groups[c] for c in classes})
        group = st.selectbox(tr("Alphabet"), ["all", *groups], key="ep_group", format_func=lambda g: tr("all") if g == "all" else g)
        pickable = [c for c in classes if group == "all" or image_set.class_groups[c] == group]
    st.caption(tr(
        "Pick 2 to {most} classes: N becomes the number you pick, and the classes stay when you change K, Q or the seed. "
        "Changing N or the split, or “Random classes”, draws classes at random again.", most=min(MAX_PICKED, len(classes)),
    ))  # fmt: skip
    picked = st.multiselect(
        tr("Classes (type to search)"), pickable, format_func=lambda c: class_label(image_set, c), key="ep_classes",
        max_selections=MAX_PICKED, select_all=False, placeholder=tr("choose classes"),
    )  # fmt: skip
    left, right = st.columns(2)
    shape = state.shape()
    args = (state.split(), len(picked), shape.k_shot, shape.q_query, state.episode_seed(), picked)
    left.button(tr("Use these {n} classes", n=len(picked)), key="ep_use_classes", disabled=len(picked) < 2, on_click=_use, args=args,
                help=tr("pick at least 2 classes"), icon=":material/check:")  # fmt: skip
    right.button(
        tr("Random classes"), key="ep_random_classes", disabled=state.fixed_classes() is None, on_click=_random, icon=":material/casino:"
    )


def _use(*settings) -> None:
    st.session_state[PROBLEM] = draw(*settings)


def _random() -> None:
    shape = state.shape()
    st.session_state[PROBLEM] = draw(state.split(), shape.n_way, shape.k_shot, shape.q_query, state.episode_seed())
