"""Training curves: loss and accuracy over episodes, live or from a saved run, and run comparisons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.i18n import N_, tr

Record = Mapping[str, Any]

METRIC_LABELS = {"loss": N_("training loss"), "train_acc": N_("training accuracy"), "val_acc": N_("validation accuracy")}
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#d62728"
RUN_COLORS = plotly.colors.qualitative.D3  # compared runs: ten clearly different hues (Streamlit's theme would give shades of blue)
INNER_NAMES = {("query", "loss"): N_("query loss"), ("query", "accuracy"): N_("query accuracy"),
               ("support", "loss"): N_("support loss"), ("support", "accuracy"): N_("support accuracy")}  # fmt: skip
FEW_STEPS = 10  # up to this episode, one tick per episode: automatic ticks would show 0.5, 1.5, ...


def _episode_axis(fig: go.Figure, steps: Sequence[float]) -> None:
    """x axes titled 'episode' with whole-number ticks (one per episode while the run is young)."""
    fig.update_xaxes(title_text=tr("episode"), tickformat="d", rangemode="tozero")
    if not steps or max(steps) <= FEW_STEPS:
        fig.update_xaxes(tick0=0, dtick=1)


def split_records(records: Sequence[Record]) -> tuple[list[Record], list[Record]]:
    """metrics.jsonl records (each tagged 'kind') -> (training records, validation records)."""
    return [r for r in records if r.get("kind", "train") == "train"], [r for r in records if r.get("kind") == "val"]


def _column(records: Sequence[Record], key: str) -> list[Any]:
    return [r[key] for r in records if key in r]


def _accuracy_axis(fig: go.Figure, **where: int) -> None:
    fig.update_yaxes(title_text=tr("accuracy"), range=[0, 1.02], tickformat=".0%", **where)


def training_curves(train: Sequence[Record], val: Sequence[Record] = ()) -> go.Figure:
    """Loss (left) and accuracy (right) against the episode; validation points carry their 95% CI.

    train: records with 'step', 'loss', 'train_acc'; val: records with 'step', 'val_acc', 'val_ci'.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=(tr("Loss"), tr("Accuracy")), horizontal_spacing=0.1)
    steps = _column(train, "step")
    fig.add_trace(
        go.Scatter(x=steps, y=_column(train, "loss"), name=tr("training loss"), mode="lines", line_color=TRAIN_COLOR), row=1, col=1
    )
    fig.add_trace(
        go.Scatter(
            x=steps, y=_column(train, "train_acc"), name=tr("training accuracy"), mode="lines", line_color=TRAIN_COLOR, line_dash="dot"
        ),
        row=1,
        col=2,
    )
    if val:
        fig.add_trace(
            go.Scatter(
                x=_column(val, "step"),
                y=_column(val, "val_acc"),
                error_y={"type": "data", "array": [r.get("val_ci", 0.0) for r in val], "visible": True},
                name=tr("validation accuracy"),
                mode="lines+markers",
                line_color=VAL_COLOR,
            ),
            row=1,
            col=2,
        )
    _episode_axis(fig, [*steps, *_column(val, "step")])
    fig.update_yaxes(title_text=tr("loss"), rangemode="tozero", row=1, col=1)
    _accuracy_axis(fig, row=1, col=2)
    if not train:  # in the middle of each plot, clear of the axis titles
        for x, y in (("x", "y"), ("x2", "y2")):
            fig.add_annotation(
                text=tr("waiting for the first record…"), showarrow=False, xref=f"{x} domain", yref=f"{y} domain", x=0.5, y=0.5
            )
    fig.update_layout(height=340, margin={"l": 50, "r": 20, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return fig


def compare_curves(runs: Mapping[str, Sequence[Record]], metric: str = "loss") -> go.Figure:
    """One line per run for `metric` ('loss', 'train_acc' or 'val_acc'); runs maps a label to its tagged records."""
    if metric not in METRIC_LABELS:
        raise ValueError(f"unknown metric '{metric}'; use one of: {', '.join(METRIC_LABELS)}")
    fig = go.Figure()
    steps: list[float] = []
    for i, (label, records) in enumerate(runs.items()):
        train, val = split_records(records)
        rows = val if metric == "val_acc" else train
        steps += _column(rows, "step")
        mode = "lines+markers" if metric == "val_acc" else "lines"
        color = RUN_COLORS[i % len(RUN_COLORS)]
        fig.add_trace(go.Scatter(x=_column(rows, "step"), y=_column(rows, metric), name=label, mode=mode, line_color=color))
    _episode_axis(fig, steps)
    if metric == "loss":
        fig.update_yaxes(title_text=tr(METRIC_LABELS[metric]), rangemode="tozero")
    else:
        _accuracy_axis(fig)
    legend = {"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}  # below: the toolbar covered it on the right
    fig.update_layout(title=tr(METRIC_LABELS[metric]), height=380, margin={"l": 50, "r": 20, "t": 50, "b": 40}, legend=legend)
    return fig


def accuracy_histogram(episode_accuracy: Sequence[float], accuracy: float, ci95: float) -> go.Figure:
    """Spread of per-episode test accuracy with the mean and its 95% CI marked."""
    fig = go.Figure(go.Histogram(x=list(episode_accuracy), nbinsx=20, name=tr("episodes"), marker_color=TRAIN_COLOR))
    fig.add_vline(x=accuracy, line_color=VAL_COLOR)  # its value goes in the title: a label beside the line covered the bars
    fig.add_vrect(x0=accuracy - ci95, x1=accuracy + ci95, fillcolor=VAL_COLOR, opacity=0.15, line_width=0)
    fig.update_xaxes(title_text=tr("episode accuracy"), tickformat=".0%", range=[0, 1.02])
    fig.update_yaxes(title_text=tr("episodes"))
    title = tr("mean {acc}% ± {ci} (95% CI, shaded)", acc=f"{100 * accuracy:.1f}", ci=f"{100 * ci95:.1f}")
    fig.update_layout(
        title={"text": title, "font": {"size": 13, "color": VAL_COLOR}},
        height=300, margin={"l": 50, "r": 20, "t": 40, "b": 40}, showlegend=False,
    )  # fmt: skip
    return fig


def inner_loop_curves(trace: Sequence[Record]) -> go.Figure:
    """Query and support loss (left) and accuracy (right) before (step 0) and after each inner step of one episode.

    trace: records with 'step', 'loss', 'accuracy', 'support_loss', 'support_accuracy' (FastWeightLearner.adapt_trace).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=(tr("Loss"), tr("Accuracy")), horizontal_spacing=0.1)
    steps = _column(trace, "step")
    for part, color, dash in (("query", VAL_COLOR, "solid"), ("support", TRAIN_COLOR, "dot")):
        prefix = "" if part == "query" else "support_"
        for col, key in ((1, "loss"), (2, "accuracy")):
            fig.add_trace(
                go.Scatter(
                    x=steps, y=_column(trace, prefix + key), name=tr(INNER_NAMES[part, key]), mode="lines+markers",
                    line={"color": color, "dash": dash}, legendgroup=part,
                ),
                row=1, col=col,
            )  # fmt: skip
    fig.update_xaxes(title_text=tr("inner step (0: before adapting)"), dtick=1)
    fig.update_yaxes(title_text=tr("loss"), rangemode="tozero", row=1, col=1)
    _accuracy_axis(fig, row=1, col=2)
    fig.update_layout(height=320, margin={"l": 50, "r": 20, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.3})
    return fig


def inner_accuracy_curves(curves: Mapping[str, Sequence[float]]) -> go.Figure:
    """Query accuracy before (step 0) and after each inner step, one line per learner (name -> accuracies)."""
    fig = go.Figure()
    for i, (name, accuracy) in enumerate(curves.items()):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        fig.add_trace(go.Scatter(x=list(range(len(accuracy))), y=list(accuracy), name=name, mode="lines+markers", line_color=color))
    fig.update_xaxes(title_text=tr("inner step (0: before adapting)"), dtick=1, tickformat="d")
    _accuracy_axis(fig)
    fig.update_layout(height=320, margin={"l": 50, "r": 20, "t": 20, "b": 40}, legend={"orientation": "h", "y": -0.3})
    return fig
