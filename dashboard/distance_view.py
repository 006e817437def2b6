"""The Distances page's pieces: the confusion over many episodes, and two images side by side with what the learner measured."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.analysis.distances import EpisodeMatrices, most_confused
from core.config import EpisodeShape
from core.data import ImageSet
from core.episodes import EpisodeSpec
from dashboard import errors, loaders, state
from dashboard.charts.distances import confusion_heatmap
from dashboard.charts.images import image_strip
from dashboard.i18n import N_, tr
from dashboard.labels import SPLITS

FALLBACKS = {"protonet": N_("a ProtoNet with random weights"), "pixel_nn": N_("the pixel baseline (nearest neighbour on raw pixels)")}
KINDS = {
    "distance": N_("distance (lower = closer)"),
    "similarity": N_("similarity (higher = closer)"),
    "relation": N_("relation score (higher = closer)"),
    "logits": N_("logit (higher = more likely)"),
}
QUERY_SUPPORT = {"attention": N_("attention"), "pair distance": N_("pair distance")}
SUPPORT_NAMES = (  # what core.analysis.distances says the support x support matrix holds; tr() where shown
    N_("distance (the learner's own)"), N_("euclidean distance between embeddings"), N_("cosine distance between embeddings"),
)  # fmt: skip


def matrices_of(
    m: EpisodeMatrices, queries: list[str], classes: list[str], supports: list[str]
) -> tuple[dict[str, tuple[Any, ...]], dict[str, str]]:
    """The matrices the page shows, name -> (values, rows, columns, value name, lower is closer, marks?), and their titles."""
    kind = tr(KINDS[m.kind])
    support_name = tr(m.support_name)
    matrices = {
        "query_class": (m.query_class, queries, classes, kind, m.lower_is_closer, True),
        "probabilities": (m.probabilities, queries, classes, tr("probability"), False, True),
        "support_support": (m.support_support, supports, supports, support_name, True, False),
    }
    titles = {
        "query_class": tr("Query × class: {kind}", kind=kind),
        "probabilities": tr("Softmax probabilities"),
        "support_support": tr("Support × support"),
    }
    if m.query_support is not None:  # attention (Matching Networks, black box) or pair distances (Siamese)
        name = tr(QUERY_SUPPORT.get(m.query_support_name, m.query_support_name))
        matrices["query_support"] = (m.query_support, queries, supports, name, "distance" in m.query_support_name, False)
        titles["query_support"] = tr("Query × support: {name}", name=name)
    return matrices, titles


def confusion_tab(ref: state.LearnerRef, choice: state.DataChoice, fallback: str, shape: EpisodeShape) -> None:
    """Accuracy, confusion matrix and most confused pairs over many seeded episodes of the episode's shape."""
    episodes = int(st.number_input(tr("Episodes"), min_value=20, max_value=5000, value=300, step=100, key="di_episodes"))
    st.caption(tr(
        "{n}-way {k}-shot episodes with {q} queries per class from the {split} split, seed 0.",
        n=shape.n_way, k=shape.k_shot, q=shape.q_query, split=tr(SPLITS[state.split()]),
    ))  # fmt: skip
    if not st.toggle(tr("Compute the confusion matrix"), key="di_confusion"):
        return
    with errors.reported(stop=False), st.spinner(tr("Evaluating {n} episodes…", n=episodes)):
        result = loaders.split_evaluation(ref, choice, state.split(), shape, episodes, fallback)
        st.metric(tr("Accuracy over these episodes"), f"{100 * result.accuracy:.1f}% ± {100 * result.ci95:.1f}")
        st.plotly_chart(confusion_heatmap(result.confusion, result.class_names), key="di_confusion_chart", config={"displayModeBar": False})
        names, totals = result.class_names, [sum(row) for row in result.confusion]
        share_name = tr("share of its queries")
        pairs = [
            {tr("true class"): names[i], tr("predicted as"): names[j], tr("queries"): n, share_name: n / totals[i]}
            for i, j, n in most_confused(result.confusion)
        ]
        if not pairs:
            st.caption(tr("No query was taken for another class."))
            return
        st.markdown(tr("**Most confused pairs**"))
        share = st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")
        st.dataframe(pairs, hide_index=True, column_config={share_name: share})


def compare_images(image_set: ImageSet, spec: EpisodeSpec, matrices: dict[str, tuple[Any, ...]], titles: dict[str, str]) -> None:
    """A cell of one matrix: the row's image, the column's image(s) and the value between them, at one scale."""
    st.subheader(tr("Compare two images"))
    support_images = [i for row in spec.support for i in row]
    query_images = [i for row in spec.query for i in row]
    a, b, c = st.columns([1.2, 1, 1])
    name = a.selectbox(tr("Matrix"), list(matrices), format_func=titles.get, key="di_matrix")
    values, rows, cols, value_name, _, _ = matrices[name]
    row = b.selectbox(tr("Row"), range(len(rows)), format_func=rows.__getitem__, key="di_row")
    col = c.selectbox(tr("Column"), range(len(cols)), format_func=cols.__getitem__, key="di_col")
    row, col = min(row, len(rows) - 1), min(col, len(cols) - 1)
    left_images = [support_images[row]] if name == "support_support" else [query_images[row]]
    by_class = name in ("query_class", "probabilities")
    right_images = list(spec.support[col]) if by_class else [support_images[col]]
    left, mid, right = st.columns([1, 1, 2], vertical_alignment="center")
    strips = [image_strip(image_set.images[images], scale=4) for images in (left_images, right_images)]
    left.image(strips[0], width=strips[0].width, caption=rows[row])  # true size: both sides at one scale
    mid.metric(value_name, f"{values[row, col]:.4g}")
    right.image(strips[1], width=strips[1].width, caption=cols[col] + (" " + tr("(its support images)") if by_class else ""))
