"""Figures of the Tasks page: the task map, task similarity, warm vs cold start curves, NMF loadings.

Pure functions of plain arrays and lists; each returns a plotly figure (or table rows) and is tested directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.charts.space import category_colors
from dashboard.i18n import N_, tr

KIND_SYMBOLS = {"stored": "circle", "new": "diamond"}
CATEGORY_NAMES = (N_("stored"), N_("new"), N_("holds it"), N_("does not"), N_("group"), N_("stored or new"))  # tr() where shown
START_NAMES = (N_("cold"), N_("cold-random"), N_("warm"), N_("warm-random"))  # core.tasks.warmstart.STARTS, tr() where drawn
TABLE_NAMES = (N_("prototypes"), N_("metric"), N_("parameter"), N_("centroid"), N_("class"))  # retrievals and relations, tr() where shown
START_COLORS = {"cold": "#1f77b4", "cold-random": "#7f7f7f", "warm": "#d62728", "warm-random": "#ff7f0e"}


def task_scatter(coords: np.ndarray, colour: Sequence[str], kinds: Sequence[str], hover: Sequence[str], title: str = "") -> go.Figure:
    """Tasks at coords (t, 2), one trace per `colour` category; stored tasks are circles, new ones diamonds."""
    coords, colour, kinds = np.asarray(coords, dtype=float), np.asarray(colour), np.asarray(kinds)
    if not len(coords) == len(colour) == len(kinds) == len(hover):
        raise ValueError(f"{len(coords)} points but {len(colour)} colours, {len(kinds)} kinds and {len(hover)} hover texts")
    colors = category_colors(colour.tolist())
    fig = go.Figure()
    for category in colors:
        rows = np.flatnonzero(colour == category)
        fig.add_trace(
            go.Scatter(
                x=coords[rows, 0],
                y=coords[rows, 1],
                mode="markers",
                name=tr(str(category)),
                marker={
                    "color": colors[category],
                    "symbol": [KIND_SYMBOLS.get(k, "circle") for k in kinds[rows]],
                    "size": 8,
                    "line": {"width": 0},
                },
                customdata=rows,
                text=[hover[i] for i in rows],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title or None,
        height=480,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        legend={"title": {"text": ""}, "orientation": "h", "yanchor": "top", "y": -0.02, "x": 0},  # clear of the toolbar
    )
    fig.update_xaxes(showticklabels=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, scaleanchor="x", scaleratio=1)
    return fig


def task_colours(by: str | int, groups: Sequence[str], kinds: Sequence[str], class_sets: Sequence[Sequence[int]]) -> list[str]:
    """The colour category of each task: its group ('group'), 'stored' / 'new' ('stored or new'), or, for a
    class id, whether the task holds that class."""
    if by == "group":
        return list(groups)
    if by == "stored or new":
        return list(kinds)
    return ["holds it" if by in classes else "does not" for classes in class_sets]


def group_order(groups: Sequence[str]) -> np.ndarray:
    """Row order that puts tasks of one group together (stable within a group)."""
    return np.argsort(np.asarray(groups), kind="stable")


def group_ticks(groups: np.ndarray) -> dict:
    """Axis ticks naming each group once, at its first row (groups already sorted)."""
    starts = [i for i in range(len(groups)) if i == 0 or groups[i] != groups[i - 1]]
    return {"tickvals": starts, "ticktext": [str(groups[i]) for i in starts]}


def similarity_heatmap(similarity: np.ndarray, row_groups: Sequence[str], col_groups: Sequence[str], title: str = "") -> go.Figure:
    """New x stored task similarity (m, t), rows and columns sorted by group; ticks name each group once."""
    similarity = np.asarray(similarity, dtype=float)
    if similarity.shape != (len(row_groups), len(col_groups)):
        raise ValueError(f"a {similarity.shape} matrix for {len(row_groups)} new and {len(col_groups)} stored tasks")
    rows, cols = group_order(row_groups), group_order(col_groups)
    row_sorted, col_sorted = np.asarray(row_groups)[rows], np.asarray(col_groups)[cols]
    row_hover = np.asarray([tr("new task {i} ({group})", i=rows[i], group=row_sorted[i]) for i in range(len(rows))])
    col_hover = np.asarray([tr("stored task {i} ({group})", i=cols[j], group=col_sorted[j]) for j in range(len(cols))])
    fig = go.Figure(
        go.Heatmap(
            z=similarity[np.ix_(rows, cols)],
            colorscale="RdBu",
            reversescale=True,
            colorbar={"title": {"text": tr("similarity")}},
            customdata=np.stack(np.broadcast_arrays(row_hover[:, None], col_hover[None, :]), -1),
            hovertemplate="%{customdata[0]} vs %{customdata[1]}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(title=title or None, height=460, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10})
    fig.update_xaxes(**group_ticks(col_sorted), tickangle=-45, title=tr("stored tasks"))
    fig.update_yaxes(**group_ticks(row_sorted), autorange="reversed", title=tr("new tasks"))
    return fig


def start_curves(steps: Sequence[int], curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str = "") -> go.Figure:
    """Accuracy (%) vs fine-tuning steps, one line per start with its 95% CI as a band. curves: start -> (mean, ci) in 0..1."""
    fig = go.Figure()
    x = list(steps)
    for name, (mean, ci) in curves.items():
        mean, ci = 100 * np.asarray(mean, dtype=float), 100 * np.asarray(ci, dtype=float)
        color = START_COLORS.get(name, "#444")
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=np.concatenate([mean + ci, (mean - ci)[::-1]]),
                fill="toself",
                fillcolor=color,
                opacity=0.2,
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode="lines+markers",
                name=tr(name),
                line={"color": color},
                legendgroup=name,
                customdata=ci,
                hovertemplate=tr(name) + ": " + tr("%{y:.1f}% ± %{customdata:.1f} after %{x} steps") + "<extra></extra>",
            )
        )
    fig.update_layout(
        title=title or None,
        height=420,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},  # below: the toolbar covered it on the right
    )
    fig.update_xaxes(title=tr("fine-tuning steps"), tickvals=x)
    fig.update_yaxes(title=tr("query accuracy (%)"))
    return fig


def group_loadings(loadings: np.ndarray, groups: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Mean NMF loading of each group's tasks on each factor -> ((groups, k), group names sorted)."""
    loadings, groups = np.asarray(loadings, dtype=float), np.asarray(groups)
    names = sorted(set(groups.tolist()))
    return np.stack([loadings[groups == n].mean(0) for n in names]), names


def loadings_heatmap(loadings: np.ndarray, groups: Sequence[str], title: str = "") -> go.Figure:
    """Group x factor heatmap of mean task loadings (what each factor means, by the groups that load on it)."""
    means, names = group_loadings(loadings, groups)
    fig = go.Figure(
        go.Heatmap(
            z=means,
            x=[tr("factor {f}", f=f) for f in range(means.shape[1])],
            y=names,
            colorscale="Viridis",
            colorbar={"title": {"text": tr("mean loading")}},
            hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or None, height=max(260, 28 * len(names) + 80), margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10}
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def factor_rows(top_groups: Sequence[Sequence[tuple[str, float]]], top_features: Sequence[Sequence[tuple[str, float]]]) -> list[dict]:
    """One table row per factor: its top groups (mean loading) and its top features (weight)."""
    join = lambda pairs: ", ".join(f"{name} ({w:.2f})" for name, w in pairs)
    return [
        {tr("factor"): f, tr("top groups"): join(g), tr("top features"): join(h)}
        for f, (g, h) in enumerate(zip(top_groups, top_features, strict=True))
    ]


def gain_rows(steps: Sequence[int], gains: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> list[dict]:
    """One table row per step: each named paired gain (e.g. 'warm − warm-random') in points, as 'mean ± ci'."""
    return [
        {tr("steps"): s, **{name: f"{100 * m[i]:+.2f} ± {100 * c[i]:.2f}" for name, (m, c) in gains.items()}} for i, s in enumerate(steps)
    ]


def precision_rows(table: Sequence[Mapping]) -> list[dict]:
    """core.tasks.retrieval.precision_table's rows for display: precisions and the random base rate in %."""
    return [
        {
            tr("retrieval"): tr(row["retrieval"]),
            tr("related by"): tr(row["relation"]),
            tr("random"): f"{100 * row['base rate']:.1f}",
            **{key: f"{100 * value[0]:.1f} ± {100 * value[1]:.1f}" for key, value in row.items() if key.startswith("P@")},
        }
        for row in table
    ]


def lender_caption(lender: Mapping) -> str:
    """One line on a stored task a new task lent from (TaskStudy.lender): index, similarity, group, classes in common."""
    group = tr("{group} (same group)", group=lender["group"]) if lender["same group"] else lender["group"]
    shared = lender["shared classes"]
    holds = tr("holds {n} of its classes", n=shared) if shared else tr("none of its classes")
    return tr(
        "stored task {i} · similarity {s} · {group} · {holds}", i=lender["index"], s=f"{lender['similarity']:.3f}", group=group, holds=holds
    )
