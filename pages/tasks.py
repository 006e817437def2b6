"""Tasks: every task (an episode) as one point: embeddings, similarity, nearest tasks, warm start, NMF factors."""

import pandas as pd
import streamlit as st

from core.analysis.projection import METHOD_LABELS, ProjectionParams
from core.store import RunDir
from core.tasks import StudyConfig, nearest_tasks, similarity_matrix
from core.tasks.nmf import top_features, top_labels
from core.tasks.study import EMBEDDINGS, LIBRARIES
from dashboard import episode_view, errors, loaders, sidebar, state
from dashboard.charts.images import image_strip
from dashboard.charts.tasks import factor_rows, gain_rows, loadings_heatmap, similarity_heatmap, start_curves, task_colours, task_scatter

LIBRARY_LABELS = {"images": "the same classes, other images", "classes": "other classes of the same groups"}


sidebar.sidebar()
st.title("Tasks")
st.caption("Each task is one point: tasks sharing classes or groups should lie close, and a new task can start from its neighbours.")
ref = state.learner_ref()
if ref.run_dir is None:
    st.info("Choose a trained run on the Runs page (or train one): its learner embeds the images of every task.")
    st.stop()
c = st.columns(5)
library = c[0].selectbox("Stored tasks hold", LIBRARIES, format_func=LIBRARY_LABELS.get, key="ta_library")
kind = c[1].selectbox(
    "Task embedding", EMBEDDINGS, key="ta_embedding", help="metric: DeepSets over prototypes; parameter: a head's Gram matrix"
)
stored_n = int(c[2].number_input("Stored tasks", 10, 1000, 150, 10, key="ta_stored"))
new_n = int(c[3].number_input("New tasks", 5, 500, 60, 5, key="ta_new"))
k = int(c[4].number_input("Nearest tasks k", 1, 100, 10, key="ta_k"))
with errors.reported():
    config = StudyConfig(stored_tasks=stored_n, new_tasks=new_n, library=library, embedding=kind, k=min(k, stored_n), encoder_steps=150)
if not st.toggle("Run the study", key="ta_run", help="Trains a small task encoder and fine-tunes every new task: tens of seconds."):
    st.stop()
with errors.reported():
    result = loaders.task_study(ref, config)
image_set = loaders.image_set(loaders.run_data_choice(RunDir(ref.run_dir).config()))
specs, n_stored = [t.spec for t in result.stored] + result.new, len(result.stored)
groups, kinds = result.stored_groups + result.new_groups, ["stored"] * n_stored + ["new"] * len(result.new)
names = lambda spec: ", ".join(episode_view.class_label(image_set, c) for c in spec.class_ids)
support = lambda spec: image_strip(image_set.images[[i for row in spec.support for i in row]], scale=2)
tabs = st.tabs(["Task map", "Similarity", "Nearest tasks", "Warm vs cold start", "NMF factors"])

with tabs[0]:
    a, b, d = st.columns(3)
    shown = a.selectbox("Embedding", EMBEDDINGS, key="ta_map_kind")
    method = b.selectbox("Projection", list(METHOD_LABELS), format_func=METHOD_LABELS.get, key="ta_method")
    options = ["group", "stored or new", *sorted({c for s in specs for c in s.class_ids})]
    by = d.selectbox(
        "Colour by",
        options,
        key="ta_colour",
        format_func=lambda v: v if isinstance(v, str) else f"holds {episode_view.class_label(image_set, v)}",
    )
    x = result.embeddings[shown].numpy()
    with errors.reported(), st.spinner("Projecting…"):
        xy = loaders.projection(x, method, ProjectionParams(metric="cosine"), 0)
    hover = [f"{kd} task {i}: {names(s)}" for i, (kd, s) in enumerate(zip(kinds, specs, strict=True))]
    st.plotly_chart(task_scatter(xy, task_colours(by, groups, kinds, [s.class_ids for s in specs]), kinds, hover), key="ta_map")
    losses = result.encoder_losses
    st.caption(f"Stored tasks are circles, new ones diamonds. Task encoder's contrastive loss: {losses[0]:.3f} → {losses[-1]:.3f}.")

with tabs[1]:
    st.plotly_chart(similarity_heatmap(similarity_matrix(result.embeddings[kind]).numpy(), groups), key="ta_similarity")

with tabs[2]:
    j = int(st.number_input("New task", 0, len(result.new) - 1, 0, key="ta_task"))
    st.image(support(result.new[j]), caption=f"new task {j} ({result.new_groups[j]}): {names(result.new[j])}")
    e = result.embeddings[kind]
    index, sims = nearest_tasks(e[:n_stored], e[n_stored + j], min(5, n_stored))
    for i, s in zip(index[0].tolist(), sims[0].tolist(), strict=True):
        st.image(support(specs[i]), caption=f"stored task {i} · cosine {s:.3f} · {groups[i]}: {names(specs[i])}")

with tabs[3]:
    comparison = result.comparison
    st.plotly_chart(start_curves(comparison.steps, {s: comparison.curve(s) for s in comparison.accuracy}), key="ta_curves")
    gains = {s: comparison.gain(s) for s in comparison.accuracy if s != "cold"}
    st.dataframe(pd.DataFrame(gain_rows(comparison.steps, gains)), hide_index=True)
    st.caption(
        f"Paired gains over {len(result.new)} new tasks (points ± 95% CI). Fine-tuned: {comparison.settings['model']}. "
        f"Warm: the mean adapted weights of the {config.k} nearest stored tasks, their head rows matched to the new classes."
    )

with tabs[4]:
    st.plotly_chart(loadings_heatmap(result.nmf.loadings, result.nmf_groups), key="ta_loadings")
    st.dataframe(pd.DataFrame(factor_rows(top_labels(result.nmf, result.nmf_groups, 2), top_features(result.nmf, 4))), hide_index=True)
    st.caption(f"NMF of {len(result.nmf_groups)} tasks' class memberships (relative reconstruction error {result.nmf.error:.3f}).")
