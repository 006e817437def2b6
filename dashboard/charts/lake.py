"""Lake's one-shot test: a run's error against the published results (people, BPL, convnets), as reference lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from core.lake import LAKE_WAYS
from dashboard.i18n import tr

RUN_COLOR = "#1f77b4"
FAMILY_COLORS = {"people": "#2ca02c", "BPL": "#9467bd", "Siamese convnet": "#ff7f0e", "deep convnet": "#7f7f7f"}


def result_label(result: Mapping[str, Any]) -> str:
    """'inductive · 1000 episodes', or the test-time options in force, e.g. 'transductive: balance · 1000 episodes';
    a result on other classes than the test alphabets' 20-way runs says so first ('val, 17-way · …')."""
    options = result.get("options") or {}
    strength = options.get("tta_strength", 1)
    extras = [f"TTA ×{options['tta']}" + (tr(" at strength {s}", s=f"{strength:g}") if strength != 1 else "")] if options.get("tta") else []
    extras += [tr("aligned")] if options.get("align") else []
    refine = [f"refine {options['refine']}"] if options.get("refine") else []
    reads_queries = [n for n in ("center", "balance") if options.get(n)] + refine
    kind = tr("transductive") if reads_queries else tr("inductive")
    detail = ", ".join(extras + reads_queries)
    kind = f"{kind}: {detail}" if detail else kind
    split, n_way = result.get("split", "test"), result.get("n_way", LAKE_WAYS)
    if (split, n_way) != ("test", LAKE_WAYS):
        kind = tr("{split}, {n}-way · {kind}", split=split, n=n_way, kind=kind)
    n = result["episodes"]
    return tr("{kind} · {n} episode", kind=kind, n=n) if n == 1 else tr("{kind} · {n} episodes", kind=kind, n=n)


def lake_chart(results: Sequence[Mapping[str, Any]], references: Sequence[Mapping[str, Any]]) -> go.Figure:
    """The run's errors (percent, with their 95% CI) as points, each published error as a dashed line across them.

    results: stored Lake evaluations {error, ci95, episodes, options}; references: {name, error, condition} rows
    (core.lake.reference_errors()); a reference's legend entry names its condition.
    """
    fig = go.Figure()
    n = len(results)
    for ref in references:
        family = str(ref["name"]).split(" (")[0]
        named = f"{ref['name']} {ref['error']:g}% — {ref['condition']}"
        fig.add_trace(
            go.Scatter(
                x=[-0.5, n - 0.5], y=[ref["error"], ref["error"]], mode="lines", name=named,
                line={"color": FAMILY_COLORS.get(family, "#444"), "dash": "dot" if "minimal" in str(ref["name"]) else "dash", "width": 1.5},
                hovertemplate=f"{ref['name']}: {ref['error']:g}%<br>{ref['condition']}<extra></extra>",
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=list(range(n)), y=[r["error"] for r in results], mode="markers", name=tr("this run (± 95% CI)"),
            error_y={"type": "data", "array": [r["ci95"] for r in results], "visible": True},
            marker={"color": RUN_COLOR, "size": 11}, hovertemplate=tr("%{y:.2f}% error") + "<extra></extra>",
        )
    )  # fmt: skip
    ticks = [result_label(r).replace(" · ", "<br>") for r in results]  # one line a part: long labels would squeeze the plot
    top = max([r["error"] + r["ci95"] for r in results] + [float(ref["error"]) for ref in references] + [10.0])
    fig.update_layout(
        title=tr("Lake's one-shot test: 20 characters of one alphabet, support and queries by two drawers"),
        xaxis={"tickvals": list(range(n)), "ticktext": ticks, "range": [-0.5, max(n, 1) - 0.5]},
        yaxis={"title": tr("error (%)"), "range": [0, 1.1 * top], "rangemode": "tozero"},
        legend={"title": tr("published (Lake et al. 2015)")}, height=440, margin={"t": 60},
    )  # fmt: skip
    return fig
