"""Which learner a page shows, said on the page, with a way to switch: the visitor's trained runs, or untrained."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.store import CheckpointError, RunDir, RunStore
from dashboard import state
from dashboard.i18n import tr
from dashboard.sidebar import learner_label
from dashboard.visitor import visitor_id

MAX_CHOICES = 30  # the newest runs offered; the Runs page lists them all


def trained_refs(methods: Sequence[str] | None = None) -> list[state.LearnerRef]:
    """The visitor's runs (and those nobody owns) with a checkpoint, newest first, of `methods` (None: any)."""
    refs = []
    for run in RunStore(state.runs_dir()).runs():
        if run.info().get("owner") not in (None, visitor_id()) or not run.checkpoints():
            continue
        try:
            method = run.config().learner.method
        except CheckpointError:
            continue
        if methods is None or method in methods:
            refs.append(state.LearnerRef(str(run.path), None, method))
        if len(refs) == MAX_CHOICES:
            break
    return refs


def learner_bar(key: str, untrained: str, methods: Sequence[str] | None = None) -> state.LearnerRef:
    """'Learner: …' and a box to switch to another of the visitor's runs (or to no run: `untrained` says what stands in)."""
    current = state.learner_ref()
    options = [state.LearnerRef(), *trained_refs(methods)]
    if current not in options:
        options.insert(1, current)
    describe = lambda ref: untrained if ref.run_dir is None else learner_label(ref)  # noqa: E731
    st.session_state[key] = current  # the box shows the current learner, whichever page changed it
    st.selectbox(
        tr("Learner"), options, key=key, format_func=describe, on_change=lambda: state.set_learner_ref(st.session_state[key]),
        help=tr("Your trained runs, newest first, or none (an untrained learner). The choice holds on every page."),
    )  # fmt: skip
    if current.run_dir is not None and not RunDir(current.run_dir).path.exists():
        st.warning(tr("The run of the current learner is no longer on disk; choose another."))
    return current
