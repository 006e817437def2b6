"""Train: choose a learner and its settings, start a background run, watch its curves live, control it."""

import streamlit as st

from core.experiment import preflight
from core.training.background import start_run
from dashboard import errors, loaders, run_panels, sidebar, state, train_form
from dashboard.charts.training import training_curves

sidebar.sidebar()
st.title("Train")
data = state.data_choice()
st.caption(f"Meta-trains on the **train** split of **{data.dataset}** and validates on its val split every so often.")
sidebar.link("episodes.py", "Change the dataset on the Episodes page", ":material/dataset:")

run = sidebar.current_training_run()
busy = run is not None and not run.snapshot().done
if busy:
    st.info("A run is training: its settings are locked until it ends. Leaving this page does not stop it.", icon=":material/lock:")
values = train_form.train_form(disabled=busy)

if st.button("Start", key="tr_start", type="primary", disabled=busy, icon=":material/play_arrow:"):
    with errors.reported(stop=False):  # a bad setting is shown and nothing starts
        config = train_form.run_config(values, data)
        experiment = preflight(config, loaders.image_set(data))
        with st.spinner("Starting the run…"):
            run = start_run(config, state.runs_dir(), isolate=state.isolate_runs(), experiment=experiment)
        state.set_run_id(run.id)
        st.rerun()


@st.fragment(run_every=1.0 if busy else None)
def live() -> None:
    """Redrawn every second while a run trains (the run trains in the background; this only reads it)."""
    run = sidebar.current_training_run()
    if run is None:
        st.info("No run yet: choose the settings above and press Start.", icon=":material/info:")
        return
    snap = run.snapshot()
    run_panels.run_progress(snap)
    if not snap.done:
        run_panels.run_controls(run, snap)
    st.plotly_chart(training_curves(snap.train, snap.val), key="tr_curves")
    if snap.status == "failed":
        reason = errors.ui_message(snap.error)
        st.error(f"The run failed: {reason}. Change the settings and start again; the rest of the app keeps working.")
    elif snap.done:
        st.success(f"Run {snap.run_id} {snap.status} at episode {snap.step}; saved in {snap.run_dir}.", icon=":material/check_circle:")
        if state.learner_ref().run_dir == snap.run_dir:
            st.caption("This is the current learner: the Embeddings and Distances pages use it.")
        elif st.button("Use this learner", key="tr_use", type="primary", icon=":material/psychology:"):
            state.set_learner_ref(state.LearnerRef(snap.run_dir, None, run.config.learner.method))
            st.rerun()
    if busy and snap.done:
        st.rerun()  # the run ended: redraw the page once, which also stops this polling


live()
