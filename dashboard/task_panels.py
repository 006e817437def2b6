"""The Tasks page's words and panels: what the study measures (shown before it runs, so the page is not empty
until then), the four starts as core/tasks/warmstart.py defines them, and the panels drawn from a study's
plain-data summary (core.tasks.study.TaskStudy.summary), so that a study run on the page and one that
`python -m core tasks` wrote into the run folder show alike."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.data.base import ImageSet
from core.store import RunDir
from core.tasks.study import StudyConfig
from dashboard.charts.images import image_strip
from dashboard.charts.tasks import gain_rows, lender_caption, precision_rows, start_curves
from dashboard.i18n import N_, tr

LIBRARY_LABELS = {
    "mixed": N_("tasks of every group, the new tasks' classes among them"),
    "mixed-classes": N_("tasks of every group, never the new tasks' classes"),
    "images": N_("only the new tasks' classes, other images"),
    "classes": N_("only other classes of the new tasks' groups"),
}
RETRIEVAL_LABELS = {
    "prototypes": N_("prototypes, optimally matched"),
    "metric": N_("metric embedding (DeepSets)"),
    "parameter": N_("parameter embedding (a head's weights)"),
    "centroid": N_("mean prototype"),
}
STARTS = {
    "cold": N_("**cold**: the run's own start, its trained weights with a zero head (the head's first step is a prototype "
               "classifier, a strong baseline)"),
    "cold-random": N_("**cold-random**: the same weights with a random head, drawn as a new linear layer's are (the usual start "
                      "of plain fine-tuning)"),
    "warm": N_("**warm**: what the {k} stored tasks most similar to it learned: their adapted weights, each of their head rows "
               "lent to the new class whose prototype it matches best"),
    "warm-random": N_("**warm-random**: {k} stored tasks drawn **at random**, lent the very same way. Only the choice of tasks "
                      "differs from warm, so **warm − warm-random** is what similarity itself is worth"),
}  # fmt: skip


def what_the_study_does(config: StudyConfig) -> None:
    """The study explained: the four starts (with the config's N, K and k), what 'related' means, what each tab shows."""
    st.markdown(
        tr("Each new task, {n}-way {shots}-shot on the held-out test classes, is fine-tuned from four starts and scored on "
           "its own queries after each number of steps:", n=config.n_way, shots=config.k_shot) + "\n"
        + "\n".join(f"- {tr(text, k=config.k)}" for text in STARTS.values())
    )  # fmt: skip
    st.markdown(tr(
        "A stored task is *related* to a new one when it shares its group (an Omniglot alphabet, a glyph family) or one of its "
        "classes (the same character drawn by other people). Precision at k: the share of the k stored tasks ranked first that "
        "are related; random: the share of all stored tasks that are, what a random choice gets."
    ))  # fmt: skip
    st.markdown(tr(
        "**Once it has run**: **Warm vs cold start** draws accuracy against fine-tuning steps for every start; **Retrieved "
        "tasks**, the stored tasks a new task lent from, nearest or random, with each retrieval's precision; **Task map**, "
        "every task as a point; **NMF factors**, tasks decomposed into a few parts, each mostly one group."
    ))  # fmt: skip


def saved_studies(run: RunDir) -> list[str]:
    """Names of the study figures `python -m core tasks` wrote into the run folder."""
    return sorted(p.name for p in run.path.glob("tasks-*.json"))


def saved_panel(run: RunDir, image_set: ImageSet) -> None:
    """The figures `python -m core tasks` saved for this run (the curves and the retrieved tasks), or how to make them."""
    saved = saved_studies(run)
    again = f"`python -m core tasks --run {run.path}`"
    if not saved:
        st.info(tr("No saved figures for this run yet: run the study here, or {command} to save them.", command=again))
        return
    name = st.selectbox(tr("Figures saved by `python -m core tasks` for this run"), saved, key="ta_saved")
    try:
        summary = json.loads((run.path / name).read_text())
    except (OSError, ValueError) as exc:
        st.warning(tr("{name} cannot be read ({error}); run {command} again.", name=name, error=exc, command=again))
        return
    missing = [key for key in ("warm_start", "retrieval_precision", "examples") if key not in summary]
    if missing or "warm_minus_random" not in summary["warm_start"]:
        st.warning(tr("{name} was written by an earlier MetaScope, without warm-random's figures; run {command} again.",
                      name=name, command=again))  # fmt: skip
        return
    starts_panel(summary, "ta_saved")
    retrieval_panel(summary, image_set, "ta_saved")


def starts_panel(summary: dict, key: str) -> None:
    """Accuracy against fine-tuning steps for every start, and the paired gains."""
    ws, settings = summary["warm_start"], summary["warm_start"]["settings"]
    curves = {s: (c["mean"], c["ci95"]) for s, c in ws["curves"].items()}
    st.plotly_chart(start_curves(ws["steps"], curves), key=f"{key}_curves")
    warm, cold, random = tr("warm"), tr("cold"), tr("warm-random")
    gains = {f"{warm} − {cold}": ws["gains"]["warm"], f"{warm} − {random}": ws["warm_minus_random"]}
    st.dataframe(pd.DataFrame(gain_rows(ws["steps"], {n: (g["mean"], g["ci95"]) for n, g in gains.items()})), hide_index=True)
    said = tr("Paired over {n} new tasks, points ± 95% CI; k = {k} of {stored} stored tasks.", n=ws["tasks"], k=settings["k"],
              stored=settings["stored_tasks"])  # fmt: skip
    same = ws["same_class_rows"]
    if {"warm", "warm-random"} <= same.keys():  # only when head rows were lent
        said += " " + tr("Head rows lent by the new class itself (on other images): warm {warm}, warm-random {random}.",
                         warm=f"{same['warm']:.0%}", random=f"{same['warm-random']:.0%}")  # fmt: skip
    st.caption(said + " " + tr("Fine-tuned: {model}.", model=settings["model"]))


def first_shots(image_set: ImageSet, task: dict) -> object:
    """One support image of each class of a task ({'class_ids', 'support'}: core.tasks.study.support_of), side by side."""
    return image_strip(image_set.images[[row[0] for row in task["support"]]], scale=2)


def retrieval_panel(summary: dict, image_set: ImageSet, key: str) -> None:
    """Precision at k of every retrieval, and the stored tasks one new task retrieved (warm) or drew (warm-random)."""
    st.dataframe(pd.DataFrame(precision_rows(summary["retrieval_precision"])), hide_index=True)
    examples = summary["examples"]
    j = int(st.number_input(tr("New task"), 0, len(examples) - 1, 0, key=f"{key}_task"))
    caption = tr("new task {j} ({group}), one image per class", j=j, group=examples[j]["group"])
    st.image(first_shots(image_set, examples[j]["task"]), caption=caption)
    titles = {"nearest": N_("**warm** lends from the nearest stored tasks"), "random": N_("**warm-random** lends from random ones")}
    for column, (kind, title) in zip(st.columns(2), titles.items(), strict=True):
        column.markdown(tr(title))
        for lender in examples[j][kind]:
            column.image(first_shots(image_set, lender["task"]), caption=lender_caption(lender))
