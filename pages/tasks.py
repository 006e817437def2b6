"""Tasks: every task (an episode) as one point; warm starts from the nearest stored tasks against random ones."""

import pandas as pd
import streamlit as st

from core.analysis.projection import METHOD_LABELS, ProjectionParams
from core.store import RunDir
from core.tasks import StudyConfig, run_study
from core.tasks.library import LIBRARIES
from core.tasks.nmf import top_features, top_labels
from core.tasks.study import EMBEDDINGS
from dashboard import loaders, state, task_panels, widgets
from dashboard.charts.tasks import factor_rows, loadings_heatmap, similarity_heatmap, task_colours, task_scatter
from dashboard.state import LearnerRef


@st.cache_data(max_entries=4, show_spinner=False)
def study(run_dir: str, step: int | None, stamp: float, config: StudyConfig):
    run = RunDir(run_dir).config()
    choice = loaders.run_data_choice(run)
    learner = loaders.learner(LearnerRef(run_dir, step, run.learner.method))
    bar = st.progress(0.0, "Starting…")  # made here: a cached function may only draw into what it creates
    progress = lambda stage, done, total: bar.progress(min(done / max(total, 1), 1.0), f"{stage}: {done}/{total}")
    result = run_study(learner, loaders.image_set(choice), loaders.class_split(choice, run.train.split_seed), config, progress)
    bar.empty()
    return result


widgets.sidebar()
st.title("Tasks")
st.caption("Each task is one point: does a new task learn faster from the stored tasks most similar to it than from random ones?")
ref = state.learner_ref()
if ref.run_dir is None:
    st.info("Choose a trained run on the Runs page (or train one): its learner embeds the images of every task.")
    st.stop()
run = RunDir(ref.run_dir)
image_set = loaders.image_set(loaders.run_data_choice(run.config()))
with st.expander("What this study measures", expanded=True):
    st.markdown(task_panels.ABOUT)
c = st.columns(5)
library = c[0].selectbox("Stored tasks", LIBRARIES, format_func=task_panels.LIBRARY_LABELS.get, key="ta_library")
kind = c[1].selectbox("Nearest by", EMBEDDINGS, format_func=task_panels.RETRIEVAL_LABELS.get, key="ta_embedding")
stored_n = int(c[2].number_input("Stored tasks", 10, 1000, 200, 10, key="ta_stored"))
new_n = int(c[3].number_input("New tasks", 5, 500, 60, 5, key="ta_new"))
k = int(c[4].number_input("Tasks lending, k", 1, 100, 5, key="ta_k"))
with widgets.reported():
    config = StudyConfig(stored_tasks=stored_n, new_tasks=new_n, library=library, embedding=kind, k=min(k, stored_n), encoder_steps=150)
if not st.toggle("Run the study", key="ta_run", help="Trains a small task encoder and fine-tunes every new task: tens of seconds."):
    task_panels.saved_panel(run, image_set)
    st.stop()
with widgets.reported():
    result = study(ref.run_dir, ref.step, loaders.learner_stamp(ref), config)
summary = result.summary()
specs, n_stored = [t.spec for t in result.stored] + result.new, len(result.stored)
groups, kinds = result.stored_groups + result.new_groups, ["stored"] * n_stored + ["new"] * len(result.new)
names = lambda spec: ", ".join(widgets.class_label(image_set, c) for c in spec.class_ids)
tabs = st.tabs(["Warm vs cold start", "Retrieved tasks", "Task map", "NMF factors"])

with tabs[0]:
    task_panels.starts_panel(summary, "ta")

with tabs[1]:
    task_panels.retrieval_panel(summary, image_set, "ta")
    similarity = result.similarity[kind].numpy()
    st.plotly_chart(similarity_heatmap(similarity, result.new_groups, result.stored_groups), key="ta_similarity")

with tabs[2]:
    a, b, d = st.columns(3)
    shown = a.selectbox("Embedding", list(result.embeddings), key="ta_map_kind")
    method = b.selectbox("Projection", list(METHOD_LABELS), format_func=METHOD_LABELS.get, key="ta_method")
    options = ["group", "stored or new", *sorted({c for s in specs for c in s.class_ids})]
    by = d.selectbox(
        "Colour by",
        options,
        key="ta_colour",
        format_func=lambda v: v if isinstance(v, str) else f"holds {widgets.class_label(image_set, v)}",
    )
    x = result.embeddings[shown].numpy()
    with widgets.reported(), st.spinner("Projecting…"):
        xy = loaders.projection(x, loaders.digest(x), method, ProjectionParams(metric="cosine"), 0)
    hover = [f"{kd} task {i}: {names(s)}" for i, (kd, s) in enumerate(zip(kinds, specs, strict=True))]
    st.plotly_chart(task_scatter(xy, task_colours(by, groups, kinds, [s.class_ids for s in specs]), kinds, hover), key="ta_map")
    losses = result.encoder_losses
    st.caption(f"Stored tasks are circles, new ones diamonds. Task encoder's contrastive loss: {losses[0]:.3f} → {losses[-1]:.3f}.")

with tabs[3]:
    st.plotly_chart(loadings_heatmap(result.nmf.loadings, result.nmf_groups), key="ta_loadings")
    st.dataframe(pd.DataFrame(factor_rows(top_labels(result.nmf, result.nmf_groups, 2), top_features(result.nmf, 4))), hide_index=True)
    st.caption(f"NMF of {len(result.nmf_groups)} tasks' class memberships (relative reconstruction error {result.nmf.error:.3f}).")
