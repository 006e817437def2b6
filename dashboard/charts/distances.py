"""Heatmaps of what a learner compares: query x class, support x support, attention, probabilities, confusion.

Cells sit at integer positions (labels are tick texts, so two images of one class never merge
into one row). A heatmap reports no selection to st.plotly_chart (checked in Chromium), so an
invisible marker on every cell takes the clicks and box selections, and shows the hover text.
Its hoverinfo must not be "skip": plotly sends clicks only for points that can be hovered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dashboard.i18n import tr

# visible on dark and bright cells alike, and in the legend (on white)
PREDICTED_STYLE = {"symbol": "x", "size": 12, "color": "white", "line": {"width": 1.5, "color": "black"}}
TRUE_STYLE = {"symbol": "square-open", "size": 24, "color": "#e4002b", "line": {"width": 3}}
PICKER_NAME = "cells"
TICK_CHARS = 18  # longer labels are cut on the axis (a phone's screen) and shown whole on hover
# the scale lies under the matrix: on its right it took a third of a phone's width from the cells
COLORBAR = {"orientation": "h", "thickness": 10, "len": 1.0, "x": 0.5, "xanchor": "center", "y": -0.01, "yanchor": "top",
            "title": {"side": "top"}}  # fmt: skip


def tick(label: str, limit: int = TICK_CHARS) -> str:
    """An axis label of at most `limit` characters (an ellipsis marks a cut)."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def matrix_heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    value_name: str,
    lower_is_closer: bool = False,
    predicted: Sequence[int] | None = None,
    true: Sequence[int] | None = None,
    zrange: tuple[float, float] | None = None,
    title: str = "",
) -> go.Figure:
    """values (r, c) as a heatmap; bright = close (for distances, low values are bright).

    predicted / true: per row, the column of the predicted / true class, marked with a cross / an open square.
    """
    values = np.asarray(values, dtype=float)
    r, c = values.shape
    if len(row_labels) != r or len(col_labels) != c:
        raise ValueError(f"{len(row_labels)} row and {len(col_labels)} column labels for a {r} x {c} matrix")
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=np.arange(c),
            y=np.arange(r),
            colorscale="Viridis",
            reversescale=lower_is_closer,
            zmin=None if zrange is None else zrange[0],
            zmax=None if zrange is None else zrange[1],
            colorbar={**COLORBAR, "title": {**COLORBAR["title"], "text": value_name}},
            hoverinfo="skip",  # the cell picker shows the hover text
        )
    )
    fig.add_trace(_cell_picker(values, row_labels, col_labels, value_name))
    if true is not None:
        fig.add_trace(_marks(true, tr("true class"), TRUE_STYLE))
    if predicted is not None:
        fig.add_trace(_marks(predicted, tr("predicted"), PREDICTED_STYLE))
    size = 26
    fig.update_layout(
        title=title or None,
        height=min(900, max(260, 160 + size * r)),
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 60},  # the scale below
        showlegend=False,  # the page's caption says what × and □ mark: a legend took room a phone does not have
        plot_bgcolor="rgba(0,0,0,0)",
    )
    fig.update_layout(dragmode="select")  # a box selects cells without the toolbar, which is hidden: it covered the column labels
    fig.update_xaxes(tickvals=list(range(c)), ticktext=[tick(t) for t in col_labels], side="top", showgrid=False, zeroline=False)
    fig.update_yaxes(tickvals=list(range(r)), ticktext=[tick(t) for t in row_labels], autorange="reversed", showgrid=False, zeroline=False)
    return fig


def _cell_picker(values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], value_name: str) -> go.Scatter:
    r, c = values.shape
    rows, cols = np.divmod(np.arange(r * c), c)
    labels = [[row_labels[i], col_labels[j], float(values[i, j])] for i, j in zip(rows.tolist(), cols.tolist(), strict=True)]
    return go.Scatter(
        x=cols,
        y=rows,
        mode="markers",
        name=PICKER_NAME,
        showlegend=False,
        marker={"size": 18, "symbol": "square", "opacity": 0.0, "color": "black"},
        customdata=labels,
        hovertemplate=f"%{{customdata[0]}} vs %{{customdata[1]}}<br>{value_name}: %{{customdata[2]:.4g}}<extra></extra>",
    )


def _marks(columns: Sequence[int], name: str, style: Mapping[str, Any]) -> go.Scatter:
    columns = np.asarray(columns)
    return go.Scatter(x=columns, y=np.arange(len(columns)), mode="markers", name=name, marker=dict(style), hoverinfo="skip")


def confusion_heatmap(confusion: Sequence[Sequence[int]], class_names: Sequence[str], title: str = "") -> go.Figure:
    """Confusion counts (c, c), rows true, columns predicted; colour is the row's share (recall on the diagonal)."""
    counts = np.asarray(confusion, dtype=float)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    names = list(class_names)
    fig = go.Figure(
        go.Heatmap(
            z=shares,
            x=names,
            y=names,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={**COLORBAR, "title": {**COLORBAR["title"], "text": tr("share of row")}},
            customdata=counts,
            hovertemplate=tr("true %{y}<br>predicted %{x}<br>%{customdata:.0f} queries (%{z:.0%})") + "<extra></extra>",
        )
    )
    fig.update_layout(title=title or None, height=min(900, max(320, 160 + 14 * len(names))), margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_xaxes(title=tr("predicted"), showticklabels=len(names) <= 40)
    fig.update_yaxes(title=tr("true"), autorange="reversed", showticklabels=len(names) <= 40)
    return fig


def picked_cell(event: Any) -> tuple[int, int] | None:
    """(row, column) of the first cell picked in an st.plotly_chart selection on a matrix_heatmap, else None.

    Every trace of the figure sits at integer cell positions, so a point's x and y name its cell.
    """
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points:
        try:
            return int(round(float(point["y"]))), int(round(float(point["x"])))
        except (KeyError, TypeError, ValueError):
            continue
    return None
