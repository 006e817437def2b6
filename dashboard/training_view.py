"""The Train page's views of the server's runs: the visitor's place in the queue, and other visitors' runs on request."""

from __future__ import annotations

import streamlit as st

from core.training.background import TrainingRun
from core.training.registry import MAX_TRAINING_ENV, REGISTRY, RunError
from dashboard.i18n import tr
from dashboard.labels import duration, status_label


def queue_panel(run: TrainingRun) -> None:
    """Where the visitor's waiting run stands, when it should start, and a way out of the queue."""
    place = REGISTRY.place(run)
    if place is None:
        return
    try:
        limit = REGISTRY.limit
    except RunError:
        limit = 1
    when = (
        tr("as soon as the runs ahead report their speed") if place.wait_s is None else tr("in about {time}", time=duration(place.wait_s))
    )
    at_once = tr("one run") if limit == 1 else tr("{n} runs", n=limit)
    st.info(
        tr(
            "Your run is waiting: {position} of {waiting} in the queue. This server trains {at_once} at a time for all "
            "its visitors (the operator sets it: {env}), so that each trains at full speed. Yours starts by itself, {when}; "
            "you may leave this page meanwhile.",
            position=place.position, waiting=place.waiting, at_once=at_once, env=MAX_TRAINING_ENV, when=when,
        ),
        icon=":material/hourglass_top:",
    )  # fmt: skip
    st.button(tr("Leave the queue"), key="tr_cancel", on_click=run.stop, icon=":material/cancel:")


def others_panel(me: str) -> None:
    """Other visitors' runs of this server, on request: what keeps the queue busy (no controls: they are theirs)."""
    others = REGISTRY.others(me)
    busy = [r for r in others if not r.snapshot().done]
    with st.expander(tr("Other visitors' runs on this server ({n} training or waiting)", n=len(busy)), icon=":material/group:"):
        if not others:
            st.caption(tr("No other visitor has started a run since the server started."))
            return
        rows = []
        for run in others:
            snap = run.snapshot()
            rows.append({tr("run"): run.id, tr("status"): status_label(snap.status), tr("episodes"): f"{snap.step} / {snap.total}"})
        st.dataframe(rows, hide_index=True)
