"""Runs: the saved runs with their config and curves; load, evaluate, compare, download, delete."""

import pandas as pd
import streamlit as st

from core.store import CheckpointError, RunStore
from dashboard import errors, loaders, run_panels, sidebar, state
from dashboard.charts.training import METRIC_LABELS, compare_curves, split_records, training_curves
from dashboard.lake_view import lake_panel

sidebar.sidebar()
st.title("Runs")
store = RunStore(state.runs_dir())
runs = store.runs()
if not runs:
    st.info(f"No saved runs in `{store.root}` yet.", icon=":material/folder_off:")
    sidebar.link("train.py", "Train a learner", ":material/model_training:")
    st.stop()
run_panels.runs_table([run_panels.run_row(r) for r in runs])

one, many = st.tabs(["One run", "Compare runs"])
with one:
    by_id = {r.id: r for r in runs}
    run = by_id[st.selectbox("Run", list(by_id), key="rn_pick")]
    try:
        config = run.config()
    except CheckpointError as exc:
        config = None
        st.error(f"{exc}. This folder cannot be loaded; you can delete it below.", icon=":material/broken_image:")
    if config is not None:
        ref = state.LearnerRef(str(run.path), None, config.learner.method)
        left, right = st.columns([1, 3], vertical_alignment="center")
        if left.button("Use as current learner", key="rn_use", type="primary", icon=":material/psychology:"):
            with errors.reported(stop=False):
                loaders.learner(ref)  # a checkpoint that does not fit fails here, not on another page
                state.set_learner_ref(ref)
                st.rerun()
        if state.learner_ref().run_dir == ref.run_dir:
            right.caption("This is the current learner: the Embeddings and Distances pages use it.")
        info = run.info()
        run_panels.run_figures(run)
        train, val = split_records(run.metrics())
        st.plotly_chart(training_curves(train, val), key="rn_curves")
        with st.expander("Config"):
            st.json({"config": config.to_dict(), "run": info}, expanded=2)
        run_panels.evaluation_panel(run, config)
        lake_panel(run, config)
        if train or val:
            csv = pd.DataFrame(run.metrics()).to_csv(index=False)
            st.download_button("Download metrics (CSV)", csv, file_name=f"{run.id}-metrics.csv", mime="text/csv", key="rn_csv")
    training = sidebar.current_training_run()
    if training is not None and training.id == run.id and not training.snapshot().done:
        st.caption("This run is training; stop it on the Train page before deleting it.")
    else:
        with st.expander("Delete this run", icon=":material/delete:"):
            sure = st.checkbox(
                f"Yes, delete {run.id} and its checkpoints", key=f"rn_confirm_{run.id}"
            )  # per run: a tick never carries over
            if st.button("Delete run", key="rn_delete", disabled=not sure, icon=":material/delete_forever:"):
                store.delete(run.id)
                if state.learner_ref().run_dir == str(run.path):
                    state.set_learner_ref(state.LearnerRef())
                st.rerun()

with many:
    chosen = st.multiselect("Runs to compare", list(by_id), default=list(by_id)[:2], key="rn_compare")
    metric = st.radio("Curve", list(METRIC_LABELS), format_func=METRIC_LABELS.get, horizontal=True, key="rn_metric")
    if chosen:
        st.plotly_chart(compare_curves({c: by_id[c].metrics() for c in chosen}, metric), key="rn_compare_chart")
