"""The Distances page's pieces: the confusion over many episodes, and two images side by side with what the learner measured."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.analysis.distances import most_confused
from core.config import EpisodeShape
from core.data import ImageSet
from core.episodes import EpisodeSpec
from dashboard import errors, loaders, state
from dashboard.charts.distances import confusion_heatmap
from dashboard.charts.images import image_strip


def confusion_tab(ref: state.LearnerRef, choice: state.DataChoice, fallback: str, shape: EpisodeShape) -> None:
    """Accuracy, confusion matrix and most confused pairs over many seeded episodes of the episode's shape."""
    episodes = int(st.number_input("Episodes", min_value=20, max_value=5000, value=300, step=100, key="di_episodes"))
    st.caption(
        f"{shape.n_way}-way {shape.k_shot}-shot episodes with {shape.q_query} queries per class from the {state.split()} split, seed 0."
    )
    if not st.toggle("Compute the confusion matrix", key="di_confusion"):
        return
    with errors.reported(stop=False), st.spinner(f"Evaluating {episodes} episodes…"):
        result = loaders.split_evaluation(ref, choice, state.split(), shape, episodes, fallback)
        st.metric("Accuracy over these episodes", f"{100 * result.accuracy:.1f}% ± {100 * result.ci95:.1f}")
        st.plotly_chart(confusion_heatmap(result.confusion, result.class_names), key="di_confusion_chart")
        names, totals = result.class_names, [sum(row) for row in result.confusion]
        pairs = [
            {"true class": names[i], "predicted as": names[j], "queries": n, "share of its queries": n / totals[i]}
            for i, j, n in most_confused(result.confusion)
        ]
        if not pairs:
            st.caption("No query was taken for another class.")
            return
        st.markdown("**Most confused pairs**")
        share = st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")
        st.dataframe(pairs, hide_index=True, column_config={"share of its queries": share})


def compare_images(image_set: ImageSet, spec: EpisodeSpec, matrices: dict[str, tuple[Any, ...]], titles: dict[str, str]) -> None:
    """A cell of one matrix: the row's image, the column's image(s) and the value between them, at one scale."""
    st.subheader("Compare two images")
    support_images = [i for row in spec.support for i in row]
    query_images = [i for row in spec.query for i in row]
    a, b, c = st.columns([1.2, 1, 1])
    name = a.selectbox("Matrix", list(matrices), format_func=titles.get, key="di_matrix")
    values, rows, cols, value_name, _, _ = matrices[name]
    row = b.selectbox("Row", range(len(rows)), format_func=rows.__getitem__, key="di_row")
    col = c.selectbox("Column", range(len(cols)), format_func=cols.__getitem__, key="di_col")
    row, col = min(row, len(rows) - 1), min(col, len(cols) - 1)
    left_images = [support_images[row]] if name == "support_support" else [query_images[row]]
    by_class = name in ("query_class", "probabilities")
    right_images = list(spec.support[col]) if by_class else [support_images[col]]
    left, mid, right = st.columns([1, 1, 2], vertical_alignment="center")
    strips = [image_strip(image_set.images[images], scale=4) for images in (left_images, right_images)]
    left.image(strips[0], width=strips[0].width, caption=rows[row])  # true size: both sides at one scale
    mid.metric(value_name, f"{values[row, col]:.4g}")
    right.image(strips[1], width=strips[1].width, caption=cols[col] + (" (its support images)" if by_class else ""))
