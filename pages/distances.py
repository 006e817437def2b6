"""Distances: what the learner compares on the current episode, and where it goes wrong over many episodes."""

import contextlib
from functools import partial

import streamlit as st

from core.config import EpisodeShape
from dashboard import distance_view, episode_view, errors, learner_choice, loaders, sidebar, state
from dashboard.charts.distances import matrix_heatmap, picked_cell
from dashboard.charts.training import inner_loop_curves
from dashboard.i18n import tr

NO_TOOLBAR = {"displayModeBar": False}  # it covered the column labels; a drag selects cells without it

with contextlib.suppress(*errors.USER_ERRORS):  # reported below, where the page loads its data
    loaders.current_episode(state.data_choice())  # drawn before the sidebar, so the sidebar names it
sidebar.sidebar()
st.title(tr("Distances"))
st.caption(tr("How the learner compares the queries of the current episode with its classes and support images."))
choice = state.data_choice()
ref = learner_choice.learner_bar("di_learner", tr("none: an untrained learner"))
fallback = "protonet"
if ref.run_dir is None:
    fallback = st.radio(tr("Untrained learner"), list(distance_view.FALLBACKS), format_func=lambda f: tr(distance_view.FALLBACKS[f]),
                        horizontal=True, key="di_fallback")  # fmt: skip
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
st.caption(tr(
    "Learner: {learner}. It gets {correct} of {total} queries right. "
    "In each matrix × marks the predicted class and □ the true one. Click a cell to see the two images it compares.",
    learner=described, correct=correct, total=len(m.true),
))  # fmt: skip
matrices, titles = distance_view.matrices_of(m, queries, classes, supports)


def follow(name: str) -> None:
    """on_select callback: a clicked cell becomes the one compared below (runs before the widgets exist)."""
    cell = picked_cell(st.session_state[f"di_{name}"])
    if cell is not None:
        st.session_state["di_matrix"], (st.session_state["di_row"], st.session_state["di_col"]) = name, cell


inner_loop = loaders.adapts(learner)  # MAML family: the query loss after each inner step is the story
tabs = st.tabs([*titles.values(), tr("Confusion over many episodes"), *([tr("Inner loop")] if inner_loop else [])])
for tab, (name, (values, rows, cols, value_name, lower, marks)) in zip(tabs, matrices.items(), strict=False):
    with tab:
        zrange = (0.0, 1.0) if name == "probabilities" else None
        fig = matrix_heatmap(values, rows, cols, value_name, lower, m.predicted if marks else None, m.true if marks else None, zrange)
        st.plotly_chart(fig, key=f"di_{name}", on_select=partial(follow, name), selection_mode=("points", "box"), config=NO_TOOLBAR)

if inner_loop:
    with tabs[-1], errors.reported(stop=False):
        trace = loaders.adaptation(ref, choice, spec, fallback)[0]
        first, final = trace[0], trace[-1]
        st.caption(tr(
            "The learner adapts to this episode's support set in {n} inner steps; the query set is then classified. "
            "Query loss {loss0} → {loss1}, accuracy {acc0}% → {acc1}%. The Embeddings page shows the space before and after adapting.",
            n=len(trace) - 1, loss0=f"{first['loss']:.3f}", loss1=f"{final['loss']:.3f}",
            acc0=f"{100 * first['accuracy']:.0f}", acc1=f"{100 * final['accuracy']:.0f}",
        ))  # fmt: skip
        st.plotly_chart(inner_loop_curves(trace), key="di_inner_loop")

with tabs[len(titles)]:
    distance_view.confusion_tab(ref, choice, fallback, EpisodeShape(n_way, k_shot, q_query))

distance_view.compare_images(image_set, spec, matrices, titles)
