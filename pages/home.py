"""Home: what MetaScope is, what is active now, and where a newcomer starts."""

import streamlit as st

from dashboard import sidebar, state  # nothing that imports torch: this page is drawn before the engine loads

sidebar.sidebar()
st.title("MetaScope")
st.markdown(
    "See inside **few-shot meta-learning**. A meta-learner is trained on many small tasks, *episodes*: "
    "N classes it has never seen, K labelled images of each (the **support** set), and **queries** to classify. "
    "MetaScope lets you build such episodes, train learners on them, and look at what they learned: "
    "embeddings, distances, and accuracy on classes held out from training."
)

data, ref = state.data_choice(), state.learner_ref()
cols = st.columns(3)
cols[0].metric("Dataset", data.dataset, help=data.data_dir or "the built-in generated glyphs: no download needed")
cols[1].metric("Learner", ref.method if ref.run_dir else "none yet", help=sidebar.learner_label())
with cols[2]:
    sidebar.device_line(lambda label: st.metric("Device", label))

run = sidebar.current_training_run()
if run is not None and not run.snapshot().done:
    st.info(f"Run {run.id} is training in the background.", icon=":material/model_training:")
    sidebar.link("train.py", "Watch it on the Train page", ":material/monitoring:")

st.subheader("Start here")
steps = [
    ("episodes.py", "1 · Build an episode", ":material/grid_view:", "pick a dataset, N, K and Q, and see the support and query images"),
    (
        "train.py",
        "2 · Train a learner",
        ":material/model_training:",
        "meta-train a learner (Prototypical Networks…) and watch its curves live",
    ),
    ("embeddings.py", "3 · Look at the embedding space", ":material/scatter_plot:", "where the learner puts each image of your episode"),
    ("distances.py", "4 · Read the distances", ":material/grid_on:", "why each query got its label"),
    ("runs.py", "5 · Compare and evaluate runs", ":material/folder_open:", "test accuracy with its 95% confidence interval, per class"),
]
for file, label, icon, text in steps:
    left, right = st.columns([1, 3], vertical_alignment="center")
    with left:
        sidebar.link(file, label, icon)
    right.caption(text)
