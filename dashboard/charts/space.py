"""The embedding space in 2-D: points coloured by a category, prototypes as stars, query-to-prototype links.

Each point carries customdata [row, class, image index, group], so a click, box or lasso
selection (st.plotly_chart on_select) names the rows it picked whatever trace they are in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from dashboard.i18n import N_, tr

PALETTE = plotly.colors.qualitative.Dark24 + plotly.colors.qualitative.Light24
OUTCOME_COLORS = {"correct": "#2ca02c", "wrong": "#d62728", "support": "#7f7f7f"}
PROTOTYPE_COLOR = "#f2b701"  # stars where the colours are not classes' (correct / wrong, support / query): not black, not an outcome
GROUP_SYMBOLS = {"support": "diamond", "query": "circle"}  # anything else (a split name) is a circle
PROTOTYPE_SYMBOL = "star"
WEBGL_FROM = 1500  # points above which traces render with WebGL: SVG makes one DOM node per point
LEGEND_MAX = 30  # more categories than this: the legend would bury the chart
HOVER = N_("<b>%{customdata[1]}</b><br>image #%{customdata[2]} · %{customdata[3]}")  # + "<extra></extra>", in the reader's language


def category_colors(categories: Sequence[str]) -> dict[str, str]:
    """A colour per category, in order of first appearance; correct/wrong/support keep their fixed colours."""
    order = list(dict.fromkeys(categories))
    if set(order) <= set(OUTCOME_COLORS):
        return {c: color for c, color in OUTCOME_COLORS.items() if c in order}
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(order)}


def embedding_scatter(
    coords: np.ndarray,
    colour: Sequence[str],
    labels: Sequence[str],
    image_idx: Sequence[int],
    group: Sequence[str],
    prototypes: np.ndarray | None = None,
    prototype_labels: Sequence[str] = (),
    links: Sequence[tuple[int, int]] = (),
    colors: Mapping[str, str] | None = None,
    title: str = "",
) -> go.Figure:
    """Scatter of coords (n, 2), one trace per `colour` category; support points are diamonds.

    prototypes: (m, 2) drawn as stars (coloured as the class `prototype_labels[j]` where colour is by class);
    links: (point row, prototype row) pairs drawn as thin lines; colors: category -> colour (to match two charts).
    """
    n = len(coords)
    colour, group = np.asarray(colour), np.asarray(group)
    colors = dict(colors or category_colors(colour.tolist()))
    scatter = go.Scattergl if n > WEBGL_FROM else go.Scatter
    fig = go.Figure()
    if len(links) and prototypes is not None:
        fig.add_trace(_links_trace(coords, prototypes, links))
    groups_said = np.asarray([tr(str(g)) for g in group], dtype=object)  # support / query or a split, in the reader's language
    customdata = np.stack([np.arange(n), np.asarray(labels, dtype=object), np.asarray(image_idx), groups_said], axis=1)
    present = set(colour.tolist())
    for category in [c for c in colors if c in present] + sorted(present - set(colors)):  # legend in the colours' order
        rows = np.flatnonzero(colour == category)
        symbols = [GROUP_SYMBOLS.get(g, "circle") for g in group[rows]]
        fig.add_trace(
            scatter(
                x=coords[rows, 0],
                y=coords[rows, 1],
                mode="markers",
                name=tr(str(category)),  # support / query, correct / wrong, a split: in the reader's language
                marker={"color": colors.get(category, "#444"), "symbol": symbols, "size": 9 if n <= 300 else 5, "line": {"width": 0}},
                customdata=customdata[rows],
                hovertemplate=tr(HOVER) + "<extra></extra>",
            )
        )
    if prototypes is not None and len(prototypes):
        fig.add_trace(_prototype_trace(prototypes, prototype_labels, colors))
    fig.update_layout(
        title=title or None,
        showlegend=len(colors) <= LEGEND_MAX,
        # below the chart: on the right it took half a phone's width, and the toolbar covered its first entries
        legend={"itemsizing": "constant", "title": {"text": ""}, "orientation": "h", "yanchor": "top", "y": -0.02, "x": 0},
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        height=520,
    )
    fig.update_xaxes(showticklabels=False, title=None, zeroline=False)
    fig.update_yaxes(showticklabels=False, title=None, zeroline=False, scaleanchor="x", scaleratio=1)  # distances read true
    return fig


def _prototype_trace(prototypes: np.ndarray, labels: Sequence[str], colors: Mapping[str, str]) -> go.Scatter:
    fill = [colors.get(label, PROTOTYPE_COLOR) for label in labels]
    custom = [[-1, tr("prototype of {cls}", cls=label), "–", tr("class mean of the support")] for label in labels]
    return go.Scatter(
        x=prototypes[:, 0],
        y=prototypes[:, 1],
        mode="markers",
        name=tr("prototypes"),
        marker={"symbol": PROTOTYPE_SYMBOL, "size": 20, "color": fill, "line": {"width": 1.5, "color": "black"}},
        customdata=custom,
        hovertemplate=tr(HOVER) + "<extra></extra>",
    )


def _links_trace(coords: np.ndarray, prototypes: np.ndarray, links: Sequence[tuple[int, int]]) -> go.Scatter:
    """One line trace, segments separated by None (one trace instead of one per line)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for row, proto in links:
        xs += [float(coords[row, 0]), float(prototypes[proto, 0]), None]
        ys += [float(coords[row, 1]), float(prototypes[proto, 1]), None]
    line = {"color": "rgba(90,90,90,0.45)", "width": 1}
    return go.Scatter(x=xs, y=ys, mode="lines", name=tr("to nearest prototype"), line=line, hoverinfo="skip")


def selected_rows(event: Any) -> list[int]:
    """Point rows picked in an st.plotly_chart selection event (click, box or lasso); prototypes and lines excluded.

    A point's customdata arrives as a list, or as {"0": ..., "1": ...} when plotly sent it as a typed array.
    """
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    rows = []
    for point in points:
        data = point.get("customdata") if isinstance(point, Mapping) else None
        first = data.get("0") if isinstance(data, Mapping) else data[0] if isinstance(data, (list, tuple)) and data else None
        if first is not None and int(first) >= 0:
            rows.append(int(first))
    return list(dict.fromkeys(rows))
