"""The Tasks page's words: what the study computes (shown before it runs), and what each start of the warm-start
comparison is (cold, cold-random, warm, warm-random), as core/tasks/warmstart.py defines them."""

from __future__ import annotations

import streamlit as st

from dashboard.i18n import N_, tr

LIBRARY_LABELS = {"images": N_("the same classes, other images"), "classes": N_("other classes of the same groups")}
START_NAMES = (N_("cold"), N_("cold-random"), N_("warm"), N_("warm-random"))  # legend names, tr() where drawn
EMBEDDING_LABELS = {"metric": N_("metric (prototypes)"), "parameter": N_("parameter (a head's weights)")}
STARTS = {
    "cold": N_("**cold**: the run's own start for the task, its meta-trained weights with a zero head (the head's first step is a "
               "prototype classifier, a strong baseline)"),
    "cold-random": N_("**cold-random**: the same weights with a random head, the usual start of plain fine-tuning"),
    "warm": N_("**warm**: the mean adapted weights of the {k} nearest stored tasks, their head rows matched to the new classes"),
    "warm-random": N_("**warm-random**: the same transfer from {k} stored tasks drawn at random, the control: warm beating it shows "
                      "that similarity, not merely having a library, carries the gain"),
}  # fmt: skip


def what_the_study_does() -> None:
    """The study explained before it is run (it takes tens of seconds), so the page is not empty until then."""
    st.markdown(tr(
        "**What the study computes.** It draws a library of *stored* tasks and a set of *new* tasks from the test classes, "
        "embeds every task with the chosen learner, and then shows:\n"
        "- **Task map**: every task as a point (stored circles, new diamonds), coloured by group or by a class it holds;\n"
        "- **Similarity**: the cosine similarity of every pair of tasks;\n"
        "- **Nearest tasks**: a new task beside the stored tasks most like it;\n"
        "- **Warm vs cold start**: accuracy of each new task after a few fine-tuning steps, from four starts (below);\n"
        "- **NMF factors**: tasks decomposed into a few parts, each mostly one group."
    ))  # fmt: skip
    starts_explained(10)


def starts_explained(k: int) -> None:
    """The four starts of the warm-start comparison, in words."""
    st.markdown(tr("**The four starts** (each then fine-tuned the same way on the new task's support):") + "\n"
                + "\n".join(f"- {tr(text, k=k)}" for text in STARTS.values()))  # fmt: skip
