"""Train: choose a learner and its settings, start a background run (or join the queue), watch it live, control it."""

import streamlit as st

from core.experiment import preflight
from core.training.background import start_run
from dashboard import errors, external_run, loaders, run_panels, sidebar, state, train_form, training_view
from dashboard.charts.training import training_curves
from dashboard.i18n import tr
from dashboard.labels import status_label
from dashboard.visitor import visitor_id

sidebar.sidebar()
st.title(tr("Train"))
data = state.data_choice()
about = st.empty()  # what the run trains on, once the form (its recipe) says the image size
sidebar.link("episodes.py", tr("Change the dataset on the Episodes page"), ":material/dataset:")

run = sidebar.current_training_run()
busy = run is not None and not run.snapshot().done
if busy:
    st.info(tr("Your run is training or waiting: its settings are locked until it ends. Leaving this page does not stop it."),
            icon=":material/lock:")  # fmt: skip
values = train_form.train_form(disabled=busy)
about.caption(tr("Meta-trains on the **train** split of **{dataset}**, {size} px images, and validates on its val split every so often.",
                 dataset=data.dataset, size=train_form.train_image_size(values, data)))  # fmt: skip
gpus = external_run.gpus()  # several: a run may train on all of them, through torchrun
everywhere = gpus > 1 and st.toggle(tr("Train on all {n} GPUs (torchrun; follow it on the Runs page)", n=gpus), key="tr_all_gpus")
if everywhere and "meta_batch" not in values:  # each GPU takes its part of every step's episodes: a step needs one per GPU
    values["meta_batch"] = st.number_input(tr("Episodes per step, shared by the {n} GPUs", n=gpus), min_value=gpus, value=gpus, step=gpus,
                                           key="tr_gpu_meta_batch")  # fmt: skip

if st.button(tr("Start"), key="tr_start", type="primary", disabled=busy, icon=":material/play_arrow:"):
    with errors.reported(stop=False):  # a bad setting is shown and nothing starts
        config = train_form.run_config(values, data)
        experiment = preflight(config, loaders.image_set(loaders.run_data_choice(config)))
        if everywhere:
            st.success(tr("Started {run} on {n} GPUs.", run=external_run.start_torchrun(config, state.runs_dir(), gpus).id, n=gpus))
            st.stop()
        with st.spinner(tr("Starting the run…")):
            run = start_run(config, state.runs_dir(), isolate=state.isolate_runs(), experiment=experiment, owner=visitor_id())
        state.set_run_id(run.id)
        state.set_learner_at_start(state.learner_ref())  # unchanged when it ends: the run becomes the current learner
        st.rerun()


@st.fragment(run_every=1.0 if busy else None)
def live() -> None:
    """Redrawn every second while the visitor's run trains or waits (it trains in the background; this only reads it)."""
    run = sidebar.current_training_run()
    if run is None:
        st.info(tr("No run yet: choose the settings above and press Start."), icon=":material/info:")
        return
    snap = run.snapshot()
    if snap.status == "queued":
        training_view.queue_panel(run)
    else:
        run_panels.run_progress(snap, run.config)
    if not snap.done:
        run_panels.run_controls(run, snap)
    st.plotly_chart(training_curves(snap.train, snap.val), key="tr_curves")
    if snap.status == "failed":
        reason = errors.ui_message(snap.error)
        st.error(tr("The run failed: {reason}. Change the settings and start again; the rest of the app keeps working.", reason=reason))
    elif snap.status == "cancelled":
        st.info(tr("Run {run} left the queue before it started.", run=snap.run_id), icon=":material/cancel:")
    elif snap.done:
        st.success(tr("Run {run} {status} at episode {step}; saved in {folder}.", run=snap.run_id, status=status_label(snap.status),
                      step=snap.step, folder=snap.run_dir), icon=":material/check_circle:")  # fmt: skip
        if state.learner_ref().run_dir == snap.run_dir:
            st.caption(tr("This is the current learner: the Embeddings, Distances and Every learner pages use it."))
        elif st.button(tr("Use this learner"), key="tr_use", type="primary", icon=":material/psychology:"):
            state.set_learner_ref(state.LearnerRef(snap.run_dir, None, run.config.learner.method))
            st.rerun()
    if busy and snap.done:
        st.rerun()  # the run ended: redraw the page once, which also stops this polling


live()
training_view.others_panel(visitor_id())
