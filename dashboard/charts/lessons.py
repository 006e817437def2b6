"""Figures of the Learn section: pure functions from plain arrays to plotly figures.

Titles and axis labels come in as arguments, already in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PALETTE = qualitative.Plotly  # class i is PALETTE[i % 10] in every lesson figure
GRID_COLOR = "rgba(120,120,120,0.35)"
PULL, PUSH = "#2ca02c", "#d62728"


def color(label: int) -> str:
    return PALETTE[int(label) % len(PALETTE)]


def _layout(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    # the legend goes below the x-axis title, not over it (plotly's default spot for a horizontal legend)
    legend = {"orientation": "h", "yanchor": "top", "y": -0.25 if fig.layout.xaxis.title.text else -0.15}
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40 if title else 20, "b": 10}, title=title, legend=legend)
    return fig


def bars(labels: Sequence[str], values: Sequence[float], title: str, highlight: int | None = None, value_format: str = ".3f") -> go.Figure:
    """One bar per label with its value written on it; `highlight` draws that bar in the accent colour."""
    colors = ["#3b6ea8" if i != highlight else PUSH for i in range(len(labels))]
    fig = go.Figure(
        go.Bar(x=list(labels), y=list(values), marker_color=colors, text=[f"{v:{value_format}}" for v in values], textposition="auto")
    )
    return _layout(fig, 280, title)


def grouped_bars(labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str, log_y: bool = False) -> go.Figure:
    """Bars of several series side by side per label (e.g. gradient norms per layer, first vs second order)."""
    fig = go.Figure([go.Bar(x=list(labels), y=list(values), name=name) for name, values in series.items()])
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category")  # labels such as '1.0' must not be read as numbers
    if log_y:
        fig.update_yaxes(type="log", dtick=1)  # labels at powers of ten only: minor labels read "5" for 0.5 and 0.05
    return _layout(fig, 320, title)


def split_counts(splits: Sequence[str], classes: Sequence[int], images: Sequence[int], titles: tuple[str, str]) -> go.Figure:
    """Classes and images per split, side by side."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles)
    fig.add_trace(go.Bar(x=list(splits), y=list(classes), text=list(classes), marker_color="#3b6ea8", showlegend=False), row=1, col=1)
    fig.add_trace(go.Bar(x=list(splits), y=list(images), text=list(images), marker_color="#7f7f7f", showlegend=False), row=1, col=2)
    return _layout(fig, 260)


def playground(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    forces: np.ndarray,
    grid: np.ndarray,
    anchor: int,
    radius: float,
    titles: tuple[str, str],
    legend: tuple[str, str] = ("class {label}", "anchor"),
) -> go.Figure:
    """Input plane (left) and embedding (right): points by class, the warped input grid, each point's pull/push arrow,
    and a dashed circle of `radius` around the anchor point.

    x, z, forces: (n, 2); y: (n,); grid: (lines, samples, 2) in embedding coordinates.
    legend: the class entries' format (with {label}) and the anchor's name, in the reader's language.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.06)
    for line in grid:
        fig.add_trace(
            go.Scatter(
                x=line[:, 0], y=line[:, 1], mode="lines", line={"color": GRID_COLOR, "width": 1}, hoverinfo="skip", showlegend=False
            ),
            row=1,
            col=2,
        )
    span = float(np.ptp(z, axis=0).max()) or 1.0
    scale = 0.15 * span / max(float(np.linalg.norm(forces, axis=1).max()), 1e-12)
    tips = z + scale * forces
    xs = np.stack([z[:, 0], tips[:, 0], np.full(len(z), np.nan)], 1).ravel()
    ys = np.stack([z[:, 1], tips[:, 1], np.full(len(z), np.nan)], 1).ravel()
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#444", "width": 1}, hoverinfo="skip", name="−∂L/∂z"), row=1, col=2)
    for label in np.unique(y):
        rows = y == label
        for col, points in ((1, x), (2, z)):
            fig.add_trace(
                go.Scatter(
                    x=points[rows, 0],
                    y=points[rows, 1],
                    mode="markers",
                    marker={"color": color(label), "size": 7},
                    name=legend[0].format(label=label),
                    legendgroup=str(label),
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    a = z[anchor]
    fig.add_shape(
        type="circle",
        x0=a[0] - radius,
        y0=a[1] - radius,
        x1=a[0] + radius,
        y1=a[1] + radius,
        line={"dash": "dash", "color": PUSH},
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=[a[0]],
            y=[a[1]],
            mode="markers",
            marker={"symbol": "star", "size": 16, "color": color(y[anchor]), "line": {"width": 1, "color": "black"}},
            name=legend[1],
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=[x[anchor, 0]],
            y=[x[anchor, 1]],
            mode="markers",
            marker={"symbol": "star", "size": 16, "color": color(y[anchor]), "line": {"width": 1, "color": "black"}},
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    return _layout(fig, 430)


def loss_curve(losses: Sequence[float], title: str, axes: tuple[str, str] = ("step", "loss")) -> go.Figure:
    """The loss after every step so far; axes: (x title, y title)."""
    fig = go.Figure(go.Scatter(x=list(range(1, len(losses) + 1)), y=list(losses), mode="lines", line_color="#1f77b4"))
    fig.update_xaxes(title_text=axes[0])
    fig.update_yaxes(title_text=axes[1], rangemode="tozero")
    return _layout(fig, 250, title)


def lines(x: Sequence[float], series: Mapping[str, Sequence[float]], title: str, xlabel: str, ylabel: str) -> go.Figure:
    """One line with markers per series over the same x."""
    fig = go.Figure([go.Scatter(x=list(x), y=list(values), mode="lines+markers", name=name) for name, values in series.items()])
    fig.update_xaxes(title_text=xlabel)
    fig.update_yaxes(title_text=ylabel)
    return _layout(fig, 320, title)


def episode_map(
    support: np.ndarray,
    support_y: np.ndarray,
    prototypes: np.ndarray,
    query: np.ndarray,
    query_y: np.ndarray,
    selected: int,
    names: Sequence[str],
    title: str,
    marks: tuple[str, str] = ("query", "prototype"),
) -> go.Figure:
    """A 2-D view of an episode: support (circles), prototypes (stars), queries (crosses), lines from the selected
    query to each prototype. support (s, 2), prototypes (n, 2), query (q, 2); marks: names of a query and a prototype."""
    fig = go.Figure()
    chosen = query[selected]
    for k, proto in enumerate(prototypes):
        fig.add_trace(
            go.Scatter(
                x=[chosen[0], proto[0]],
                y=[chosen[1], proto[1]],
                mode="lines",
                line={"color": color(k), "dash": "dot", "width": 1},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    for k, name in enumerate(names):
        c = color(k)
        s, q = support[support_y == k], query[query_y == k]
        fig.add_trace(go.Scatter(x=s[:, 0], y=s[:, 1], mode="markers", marker={"color": c, "size": 9}, name=name, legendgroup=name))
        fig.add_trace(
            go.Scatter(
                x=q[:, 0],
                y=q[:, 1],
                mode="markers",
                marker={"color": c, "size": 8, "symbol": "x"},
                legendgroup=name,
                showlegend=False,
                hovertext=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[prototypes[k, 0]],
                y=[prototypes[k, 1]],
                mode="markers",
                marker={"color": c, "size": 18, "symbol": "star", "line": {"width": 1, "color": "black"}},
                legendgroup=name,
                showlegend=False,
                hovertext=f"{marks[1]} {name}",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[chosen[0]],
            y=[chosen[1]],
            mode="markers",
            marker={"size": 16, "symbol": "circle-open", "color": "black", "line": {"width": 2}},
            name=marks[0],
            hoverinfo="skip",
        )
    )
    fig.update_yaxes(scaleanchor="x")
    return _layout(fig, 420, title)


def inner_loop(
    steps: Sequence[int],
    query_loss: Sequence[float],
    support_loss: Sequence[float],
    current: int,
    names: tuple[str, str],
    title: str,
    axes: tuple[str, str] = ("inner step", "loss"),
) -> go.Figure:
    """Support and query loss before and after each inner step, with the step being looked at marked; axes: (x, y) titles."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(steps), y=list(support_loss), mode="lines+markers", name=names[0], line_color="#7f7f7f"))
    fig.add_trace(go.Scatter(x=list(steps), y=list(query_loss), mode="lines+markers", name=names[1], line_color="#1f77b4"))
    fig.add_vline(x=current, line_dash="dash", line_color=PUSH)
    fig.update_xaxes(title_text=axes[0], dtick=1)
    fig.update_yaxes(title_text=axes[1], rangemode="tozero")
    return _layout(fig, 300, title)


def task_map(points: np.ndarray, labels: Sequence[str], groups: Sequence[str], highlight: Sequence[int], title: str) -> go.Figure:
    """Tasks as points (n, 2), coloured by group, with the `highlight` rows ringed (a task and its neighbours)."""
    fig = go.Figure()
    for i, group in enumerate(dict.fromkeys(groups)):
        rows = [j for j, g in enumerate(groups) if g == group]
        fig.add_trace(
            go.Scatter(
                x=points[rows, 0],
                y=points[rows, 1],
                mode="markers",
                marker={"color": color(i), "size": 9},
                name=group,
                hovertext=[labels[j] for j in rows],
            )
        )
    if len(highlight):
        rows = list(highlight)
        fig.add_trace(
            go.Scatter(
                x=points[rows, 0],
                y=points[rows, 1],
                mode="markers",
                marker={"size": 18, "symbol": "circle-open", "color": "black", "line": {"width": 2}},
                name="▲",
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=points[rows[:1], 0],
                y=points[rows[:1], 1],
                mode="markers",
                marker={"size": 22, "symbol": "star-open", "color": PUSH, "line": {"width": 2}},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    fig.update_yaxes(scaleanchor="x")
    return _layout(fig, 420, title)
