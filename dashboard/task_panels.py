"""The Tasks page's panels, drawn from a study's plain-data summary (core.tasks.study.TaskStudy.summary), so a
study run on the page and one that `python -m core tasks` wrote into the run folder show alike."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.data.base import ImageSet
from core.store import RunDir
from dashboard.charts.images import image_strip
from dashboard.charts.tasks import gain_rows, lender_caption, precision_rows, start_curves

LIBRARY_LABELS = {
    "mixed": "tasks of every group, the new tasks' classes among them",
    "mixed-classes": "tasks of every group, never the new tasks' classes",
    "images": "only the new tasks' classes, other images",
    "classes": "only other classes of the new tasks' groups",
}
RETRIEVAL_LABELS = {
    "prototypes": "prototypes, optimally matched",
    "metric": "metric embedding (DeepSets)",
    "parameter": "parameter embedding (head's WᵀW)",
    "centroid": "mean prototype",
}
ABOUT = """
Each new task (5 classes, one image each, from the held-out test classes) is fine-tuned from four starts and
scored on its own queries after each number of steps:
- **cold**: the run's own start, its trained weights with a zero head (the head's first step is a prototype classifier);
- **cold-random**: the same weights with a random head, as `nn.Linear` draws one (the usual fine-tuning start);
- **warm**: what the *k* stored tasks most similar to it learned: their adapted weights, each of their head rows lent to
  the new class whose prototype it matches best;
- **warm-random**: *k* stored tasks drawn **at random**, lent the very same way. Only the choice of tasks differs from
  warm, so **warm − warm-random** is what similarity itself is worth.

A stored task is *related* to a new one when it shares its group (an Omniglot alphabet, a glyph family) or one of its
classes (the same character drawn by other people). Precision at k: the share of the k stored tasks ranked first that
are related; random: the share of all stored tasks that are, what a random choice gets.
"""


def saved_studies(run: RunDir) -> list[str]:
    """Names of the study figures `python -m core tasks` wrote into the run folder."""
    return sorted(p.name for p in run.path.glob("tasks-*.json"))


def saved_panel(run: RunDir, image_set: ImageSet) -> None:
    """The figures `python -m core tasks` saved for this run (the curves and the retrieved tasks), or how to make them."""
    saved = saved_studies(run)
    again = f"`python -m core tasks --run {run.path}`"
    if not saved:
        st.info(f"No saved figures for this run yet: run the study here, or {again} to save them.")
        return
    name = st.selectbox("Figures saved by `python -m core tasks` for this run", saved, key="ta_saved")
    try:
        summary = json.loads((run.path / name).read_text())
    except (OSError, ValueError) as exc:
        st.warning(f"{name} cannot be read ({exc}); run {again} again.")
        return
    missing = [key for key in ("warm_start", "retrieval_precision", "examples") if key not in summary]
    if missing or "warm_minus_random" not in summary["warm_start"]:
        st.warning(f"{name} was written by an earlier MetaScope, without warm-random's figures; run {again} again.")
        return
    starts_panel(summary, "ta_saved")
    retrieval_panel(summary, image_set, "ta_saved")


def starts_panel(summary: dict, key: str) -> None:
    """Accuracy against fine-tuning steps for every start, and the paired gains."""
    ws = summary["warm_start"]
    curves = {s: (c["mean"], c["ci95"]) for s, c in ws["curves"].items()}
    st.plotly_chart(start_curves(ws["steps"], curves), key=f"{key}_curves")
    gains = {"warm − cold": ws["gains"]["warm"], "warm − warm-random": ws["warm_minus_random"]}
    st.dataframe(pd.DataFrame(gain_rows(ws["steps"], {n: (g["mean"], g["ci95"]) for n, g in gains.items()})), hide_index=True)
    same = ws["same_class_rows"]
    st.caption(
        f"Paired over {ws['tasks']} new tasks, points ± 95% CI; k = {ws['settings']['k']} of {ws['settings']['stored_tasks']} "
        f"stored tasks. Head rows lent by the new class itself (on other images): warm {same['warm']:.0%}, "
        f"warm-random {same['warm-random']:.0%}. Fine-tuned: {ws['settings']['model']}."
    )


def first_shots(image_set: ImageSet, task: dict) -> object:
    """One support image of each class of a task ({'class_ids', 'support'}: core.tasks.study.support_of), side by side."""
    return image_strip(image_set.images[[row[0] for row in task["support"]]], scale=2)


def retrieval_panel(summary: dict, image_set: ImageSet, key: str) -> None:
    """Precision at k of every retrieval, and the stored tasks one new task retrieved (warm) or drew (warm-random)."""
    st.dataframe(pd.DataFrame(precision_rows(summary["retrieval_precision"])), hide_index=True)
    examples = summary["examples"]
    j = int(st.number_input("New task", 0, len(examples) - 1, 0, key=f"{key}_task"))
    st.image(first_shots(image_set, examples[j]["task"]), caption=f"new task {j} ({examples[j]['group']}), one image per class")
    columns = st.columns(2)
    titles = {"nearest": "**warm** lends from the nearest stored tasks", "random": "**warm-random** lends from random ones"}
    for column, (kind, title) in zip(columns, titles.items(), strict=True):
        column.markdown(title)
        for lender in examples[j][kind]:
            column.image(first_shots(image_set, lender["task"]), caption=lender_caption(lender))
