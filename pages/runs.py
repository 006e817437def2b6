"""Runs: the saved runs with their config and curves; load, evaluate, compare, download, delete. Yours first."""

import pandas as pd
import streamlit as st

from core.store import CheckpointError, RunStore
from dashboard import access, errors, external_run, loaders, run_panels, sidebar, state
from dashboard.charts.training import METRIC_LABELS, compare_curves, split_records, training_curves
from dashboard.i18n import tr
from dashboard.lake_view import lake_panel
from dashboard.visitor import visitor_id

sidebar.sidebar()
st.title(tr("Runs"))
store = RunStore(state.runs_dir())
mine, others = run_panels.owned(store.runs(), visitor_id())
if others and st.toggle(tr("Show other visitors' runs ({n})", n=len(others)), key="rn_others"):
    runs = mine + others
else:
    runs = mine
if not runs:
    st.info(tr("No saved runs of yours in `{folder}` yet.", folder=store.root), icon=":material/folder_off:")
    sidebar.link("train.py", tr("Train a learner"), ":material/model_training:")
    st.stop()
run_panels.runs_table([run_panels.run_row(r) for r in runs], current=sidebar.current_run_id())

one, many = st.tabs([tr("One run"), tr("Compare runs")])
with one:
    by_id = {r.id: r for r in runs}
    run = by_id[
        st.selectbox(
            tr("Run"), list(by_id), key="rn_pick", format_func=lambda r: r if by_id[r] in mine else tr("{run} (another visitor's)", run=r)
        )
    ]
    try:
        config = run.config()
    except CheckpointError as exc:
        config = None
        delete = tr("; you can delete it below") if access.deleting_allowed() else ""
        st.error(tr("{problem}. This folder cannot be loaded{delete}.", problem=exc, delete=delete), icon=":material/broken_image:")
    if config is not None:
        ref = state.LearnerRef(str(run.path), None, config.learner.method)
        left, right = st.columns([1, 3], vertical_alignment="center")
        if left.button(tr("Use as current learner"), key="rn_use", type="primary", icon=":material/psychology:"):
            with errors.reported(stop=False):
                loaders.learner(ref)  # a checkpoint that does not fit fails here, not on another page
                state.set_learner_ref(ref)
                st.rerun()
        if state.learner_ref().run_dir == ref.run_dir:
            right.caption(tr("This is the current learner: the Embeddings, Distances and Every learner pages use it."))
        info = run.info()
        train, val = split_records(run.metrics())
        if run.status() == "running":  # trained now, here or by another process: followed from its folder
            external_run.follow(run, config.train.episodes)
        else:
            st.plotly_chart(training_curves(train, val), key="rn_curves")
        with st.expander(tr("Config")):
            st.json({"config": config.to_dict(), "run": info}, expanded=2)
        run_panels.evaluation_panel(run, config)
        lake_panel(run, config)
        if train or val:
            csv = pd.DataFrame(run.metrics()).to_csv(index=False)
            st.download_button(tr("Download metrics (CSV)"), csv, file_name=f"{run.id}-metrics.csv", mime="text/csv", key="rn_csv")
    training = sidebar.current_training_run()
    if not access.deleting_allowed():
        st.caption(
            tr("Deleting runs is off on this dashboard (its operator turns it on with {setting}=1).", setting=access.ALLOW_DELETE_ENV)
        )
    elif run not in mine:
        st.caption(tr("Another visitor's run: only they can delete it."))
    elif training is not None and training.id == run.id and not training.snapshot().done:
        st.caption(tr("This run is training; stop it on the Train page before deleting it."))
    elif run.status() == "running":
        st.caption(tr("Another process is training this run; it can be deleted once that ends."))
    else:
        with st.expander(tr("Delete this run"), icon=":material/delete:"):
            sure = st.checkbox(
                tr("Yes, delete {run} and its checkpoints", run=run.id), key=f"rn_confirm_{run.id}"
            )  # per run: a tick never carries over
            if st.button(tr("Delete run"), key="rn_delete", disabled=not sure, icon=":material/delete_forever:"):
                store.delete(run.id)
                if state.learner_ref().run_dir == str(run.path):
                    state.set_learner_ref(state.LearnerRef())
                st.rerun()

with many:
    chosen = st.multiselect(tr("Runs to compare"), list(by_id), default=list(by_id)[:2], key="rn_compare")
    metric = st.radio(tr("Curve"), list(METRIC_LABELS), format_func=lambda m: tr(METRIC_LABELS[m]), horizontal=True, key="rn_metric")
    if chosen:
        st.plotly_chart(compare_curves({c: by_id[c].metrics() for c in chosen}, metric), key="rn_compare_chart")
