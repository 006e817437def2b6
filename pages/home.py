"""Home: what MetaScope is, what is active now, and where a newcomer starts."""

import streamlit as st

from dashboard import sidebar, state  # nothing that imports torch: this page is drawn before the engine loads
from dashboard.i18n import tr
from dashboard.labels import status_label

sidebar.sidebar()
st.title("MetaScope")
st.markdown(tr(
    "See inside **few-shot meta-learning**. A meta-learner is trained on many small tasks, *episodes*: "
    "N classes it has never seen, K labelled images of each (the **support** set), and **queries** to classify. "
    "MetaScope lets you build such episodes, train learners on them, and look at what they learned: "
    "embeddings, distances, and accuracy on classes held out from training."
))  # fmt: skip

data, ref = state.data_choice(), state.learner_ref()
cols = st.columns(3)
cols[0].metric(tr("Dataset"), data.dataset, help=data.data_dir or tr("the built-in generated glyphs: no download needed"))
cols[1].metric(tr("Learner"), ref.method if ref.run_dir else tr("untrained"), help=sidebar.learner_label())
with cols[2]:
    sidebar.device_line(lambda label: st.metric(tr("Device"), label))

run = sidebar.current_training_run()
if run is not None:

    @st.fragment(run_every=None if run.snapshot().done else 2.0)
    def your_run() -> None:
        """Polled like the sidebar's line: when the run ends the whole page is drawn again (by the sidebar), saying so."""
        snap = run.snapshot()
        if snap.status == "queued":
            st.info(tr("Your run {run} is waiting in the queue for a free slot.", run=run.id), icon=":material/hourglass_top:")
        elif not snap.done:
            st.info(tr("Your run {run} is training in the background ({status}, episode {step} of {total}).", run=run.id,
                       status=status_label(snap.status), step=snap.step, total=snap.total), icon=":material/model_training:")  # fmt: skip
        else:
            current = tr(" It is the current learner.") if sidebar.current_run_id() == run.id else ""
            st.success(tr("Your run {run} has ended: {status}.", run=run.id, status=status_label(snap.status)) + current,
                       icon=":material/check_circle:")  # fmt: skip
        sidebar.link("train.py", tr("Watch it on the Train page"), ":material/monitoring:")

    your_run()

st.subheader(tr("Start here"))
steps = [  # (page, link, icon, what it is for)
    ("episodes.py", tr("1 · Build an episode"), ":material/grid_view:",
     tr("pick a dataset, N, K and Q, and see the support and query images")),
    ("train.py", tr("2 · Train a learner"), ":material/model_training:",
     tr("meta-train a learner (Prototypical Networks…) and watch its curves live")),
    ("embeddings.py", tr("3 · Look at the embedding space"), ":material/scatter_plot:",
     tr("where the learner puts each image of your episode")),
    ("distances.py", tr("4 · Read the distances"), ":material/grid_on:", tr("why each query got its label")),
    ("compare.py", tr("5 · One episode, every learner"), ":material/compare:",
     tr("the same episode through each of your learners: where they agree, where they differ")),
    ("runs.py", tr("6 · Compare and evaluate runs"), ":material/folder_open:",
     tr("test accuracy with its 95% confidence interval, per class")),
    ("tasks.py", tr("7 · Relate whole tasks"), ":material/hub:",
     tr("each task as a point: similar tasks, warm starts from neighbours, NMF")),
    ("learn.py", tr("Learn: guided lessons"), ":material/school:",
     tr("the ideas step by step on the live engine, in English or Chinese")),
]  # fmt: skip
for file, label, icon, text in steps:
    left, right = st.columns([1, 2], vertical_alignment="center")
    with left:
        sidebar.link(file, label, icon)
    right.caption(text)
