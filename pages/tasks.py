"""Tasks: every task (an episode) as one point; warm starts from the nearest stored tasks against random ones."""

import pandas as pd
import streamlit as st

from core.analysis.projection import METHOD_LABELS, ProjectionParams
from core.store import RunDir
from core.tasks import StudyConfig
from core.tasks.library import LIBRARIES
from core.tasks.nmf import top_features, top_labels
from core.tasks.study import EMBEDDINGS
from dashboard import episode_view, errors, learner_choice, loaders, sidebar, task_panels
from dashboard.charts.tasks import factor_rows, loadings_heatmap, similarity_heatmap, task_colours, task_scatter
from dashboard.i18n import tr

sidebar.sidebar()
st.title(tr("Tasks"))
st.caption(tr("Each task is one point: does a new task learn faster from the stored tasks most similar to it than from random ones?"))
ref = learner_choice.learner_bar("ta_learner", tr("none (choose a trained run)"))
if ref.run_dir is None:
    st.info(tr("Choose one of your trained runs above (or train one): its learner embeds the images of every task."))
    task_panels.what_the_study_does(StudyConfig())
    st.stop()
run = RunDir(ref.run_dir)
image_set = loaders.image_set(loaders.run_data_choice(run.config()))
c = st.columns(5)
library = c[0].selectbox(tr("Stored tasks hold"), LIBRARIES, format_func=lambda v: tr(task_panels.LIBRARY_LABELS[v]), key="ta_library")
kind = c[1].selectbox(tr("Nearest by"), EMBEDDINGS, format_func=lambda v: tr(task_panels.RETRIEVAL_LABELS[v]), key="ta_embedding")
stored_n = int(c[2].number_input(tr("Stored tasks"), 10, 1000, 200, 10, key="ta_stored"))
new_n = int(c[3].number_input(tr("New tasks"), 5, 500, 60, 5, key="ta_new"))
k = int(c[4].number_input(tr("Tasks lending, k"), 1, 100, 5, key="ta_k"))
with errors.reported():
    config = StudyConfig(stored_tasks=stored_n, new_tasks=new_n, library=library, embedding=kind, k=min(k, stored_n), encoder_steps=150)
with st.expander(tr("What this study measures"), expanded=not st.session_state.get("ta_run")):  # folded once it has run
    task_panels.what_the_study_does(config)
if not st.toggle(tr("Run the study"), key="ta_run", help=tr("Trains a small task encoder and fine-tunes every new task: tens of seconds.")):
    task_panels.saved_panel(run, image_set)
    st.stop()
with errors.reported():
    result = loaders.task_study(ref, config)
summary = result.summary()
specs, n_stored = [t.spec for t in result.stored] + result.new, len(result.stored)
groups, kinds = result.stored_groups + result.new_groups, ["stored"] * n_stored + ["new"] * len(result.new)
names = lambda spec: ", ".join(episode_view.class_label(image_set, c) for c in spec.class_ids)
tabs = st.tabs([tr("Warm vs cold start"), tr("Retrieved tasks"), tr("Task map"), tr("NMF factors")])

with tabs[0]:
    task_panels.starts_panel(summary, "ta")

with tabs[1]:
    task_panels.retrieval_panel(summary, image_set, "ta")
    st.plotly_chart(similarity_heatmap(result.similarity[kind].numpy(), result.new_groups, result.stored_groups), key="ta_similarity")

with tabs[2]:
    a, b, d = st.columns(3)
    shown = a.selectbox(
        tr("Embedding"), list(result.embeddings), key="ta_map_kind", format_func=lambda v: tr(task_panels.RETRIEVAL_LABELS[v])
    )
    method = b.selectbox(tr("Projection"), list(METHOD_LABELS), format_func=METHOD_LABELS.get, key="ta_method")
    options = ["group", "stored or new", *sorted({c for s in specs for c in s.class_ids})]
    holds = lambda v: tr(v) if isinstance(v, str) else tr("holds {cls}", cls=episode_view.class_label(image_set, v))  # noqa: E731
    by = d.selectbox(tr("Colour by"), options, key="ta_colour", format_func=holds)
    x = result.embeddings[shown].numpy()
    with errors.reported(), st.spinner(tr("Projecting…")):
        xy = loaders.projection(x, method, ProjectionParams(metric="cosine"), 0)
    hover = [
        tr("{kind} task {i}: {classes}", kind=tr(kd), i=i, classes=names(s)) for i, (kd, s) in enumerate(zip(kinds, specs, strict=True))
    ]
    st.plotly_chart(task_scatter(xy, task_colours(by, groups, kinds, [s.class_ids for s in specs]), kinds, hover), key="ta_map")
    losses = result.encoder_losses
    st.caption(tr("Stored tasks are circles, new ones diamonds. Task encoder's contrastive loss: {first} → {last}.",
                  first=f"{losses[0]:.3f}", last=f"{losses[-1]:.3f}"))  # fmt: skip

with tabs[3]:
    st.plotly_chart(loadings_heatmap(result.nmf.loadings, result.nmf_groups), key="ta_loadings")
    st.dataframe(pd.DataFrame(factor_rows(top_labels(result.nmf, result.nmf_groups, 2), top_features(result.nmf, 4))), hide_index=True)
    st.caption(tr("NMF of {n} tasks' class memberships (relative reconstruction error {error}).", n=len(result.nmf_groups),
                  error=f"{result.nmf.error:.3f}"))  # fmt: skip
