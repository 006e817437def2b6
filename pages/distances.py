"""Distances: what the learner compares on the current episode, and where it goes wrong over many episodes."""

import contextlib
from functools import partial

import streamlit as st

from core.config import EpisodeShape
from dashboard import distance_view, episode_view, errors, loaders, sidebar, state
from dashboard.charts.distances import matrix_heatmap, picked_cell
from dashboard.charts.training import inner_loop_curves

FALLBACKS = {"protonet": "an untrained ProtoNet (random weights)", "pixel_nn": "the pixel baseline (nearest neighbour on raw pixels)"}
KINDS = {
    "distance": "distance (lower = closer)",
    "similarity": "similarity (higher = closer)",
    "relation": "relation score (higher = closer)",
    "logits": "logit (higher = more likely)",
}

with contextlib.suppress(*errors.USER_ERRORS):  # reported below, where the page loads its data
    loaders.current_episode(state.data_choice())  # drawn before the sidebar, so the sidebar names it
sidebar.sidebar()
st.title("Distances")
st.caption("How the learner compares the queries of the current episode with its classes and support images.")
choice = state.data_choice()
ref = state.learner_ref()
fallback = "protonet"
if ref.run_dir is None:
    st.info("No run is chosen (pick one on the Runs page, or train one), so this page shows a learner that was never trained.")
    fallback = st.radio("Show", list(FALLBACKS), format_func=FALLBACKS.get, horizontal=True, key="di_fallback")
with errors.reported():
    image_set = loaders.image_set(choice)
    spec = loaders.current_episode(choice)
    learner, described = loaders.analysed_learner(ref, choice, fallback)
    m = loaders.matrices(ref, choice, spec, fallback)

n_way, k_shot, q_query = len(spec.class_ids), len(spec.support[0]), len(spec.query[0])
classes = [episode_view.class_label(image_set, c) for c in spec.class_ids]
queries = [f"q{i} · {classes[t]}" for i, t in enumerate(m.true.tolist())]
supports = [f"s{j} · {classes[j // k_shot]}" for j in range(n_way * k_shot)]
correct = int((m.predicted == m.true).sum())
st.caption(
    f"Learner: {described}. It gets {correct} of {len(m.true)} queries right. "
    "In each matrix × marks the predicted class and □ the true one. Click a cell to see the two images it compares."
)

# name -> (values, rows, columns, value name, lower is closer, marks?)
matrices = {
    "query_class": (m.query_class, queries, classes, KINDS[m.kind], m.lower_is_closer, True),
    "probabilities": (m.probabilities, queries, classes, "probability", False, True),
    "support_support": (m.support_support, supports, supports, m.support_name, True, False),
}
titles = {
    "query_class": f"Query × class: {KINDS[m.kind]}",
    "probabilities": "Softmax probabilities",
    "support_support": "Support × support",
}
if m.query_support is not None:  # attention (Matching Networks, black box) or pair distances (Siamese)
    lower = "distance" in m.query_support_name
    matrices["query_support"] = (m.query_support, queries, supports, m.query_support_name, lower, False)
    titles["query_support"] = f"Query × support: {m.query_support_name}"


def follow(name: str) -> None:
    """on_select callback: a clicked cell becomes the one compared below (runs before the widgets exist)."""
    cell = picked_cell(st.session_state[f"di_{name}"])
    if cell is not None:
        st.session_state["di_matrix"], (st.session_state["di_row"], st.session_state["di_col"]) = name, cell


inner_loop = loaders.adapts(learner)  # MAML family: the query loss after each inner step is the story
tabs = st.tabs([*titles.values(), "Confusion over many episodes", *(["Inner loop"] if inner_loop else [])])
for tab, (name, (values, rows, cols, value_name, lower, marks)) in zip(tabs, matrices.items(), strict=False):
    with tab:
        zrange = (0.0, 1.0) if name == "probabilities" else None
        fig = matrix_heatmap(values, rows, cols, value_name, lower, m.predicted if marks else None, m.true if marks else None, zrange)
        st.plotly_chart(fig, key=f"di_{name}", on_select=partial(follow, name), selection_mode=("points", "box"))

if inner_loop:
    with tabs[-1], errors.reported(stop=False):
        trace = loaders.adaptation(ref, choice, spec, fallback)[0]
        first, final = trace[0], trace[-1]
        st.caption(
            f"The learner adapts to this episode's support set in {len(trace) - 1} inner steps; the query set is then classified. "
            f"Query loss {first['loss']:.3f} → {final['loss']:.3f}, "
            f"accuracy {100 * first['accuracy']:.0f}% → {100 * final['accuracy']:.0f}%. "
            "The Embeddings page shows the space before and after adapting."
        )
        st.plotly_chart(inner_loop_curves(trace), key="di_inner_loop")

with tabs[len(titles)]:
    distance_view.confusion_tab(ref, choice, fallback, EpisodeShape(n_way, k_shot, q_query))

distance_view.compare_images(image_set, spec, matrices, titles)
