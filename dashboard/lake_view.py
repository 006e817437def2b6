"""The Runs page's Lake panel: evaluate a run on Lake's one-shot test and draw it against the published results."""

from __future__ import annotations

import streamlit as st

from core.config import RunConfig
from core.lake import ALIGNED, LAKE_PRESETS, evaluate_lake, reference_errors, store_result, stored_results
from core.learners import learner_class
from core.store import RunDir
from dashboard import loaders, state
from dashboard.charts.lake import lake_chart
from dashboard.errors import USER_ERRORS, show_error
from dashboard.i18n import tr

LAKE_DATASETS = ("omniglot",)  # the data that records each character's alphabet and each image's drawer


def preset_label(name: str) -> str:
    """A LAKE_PRESETS name as the page says it."""
    return {
        "plain": tr("plain (inductive, as published)"),
        "copies, aligned": tr("{n} distorted copies, aligned (inductive)", n=ALIGNED.tta),
        "copies, aligned, balanced": tr("{n} copies, aligned, balanced (transductive)", n=ALIGNED.tta),
    }[name]


def lake_panel(run: RunDir, config: RunConfig) -> None:
    """The stored Lake evaluations of `run` against the reference lines, and a button to add one (Omniglot runs)."""
    st.subheader(tr("Lake's one-shot test"))
    results = stored_results(run)
    if config.train.dataset not in LAKE_DATASETS and not results:
        st.info(
            tr(
                "Lake's one-shot test needs each character's alphabet and each image's drawer, which only Omniglot records; "
                "this run's data ({dataset}) is evaluated with the N-way K-shot episodes above.",
                dataset=config.train.dataset,
            ),
            icon=":material/info:",
        )
        return
    st.caption(
        tr(
            "20 characters of one unseen alphabet, one image of each by one person as the support, the same characters by "
            "another person as the queries. Inductive: each query on its own (comparable with the published figures)."
        )
    )
    left, middle, right = st.columns([1, 2, 1], vertical_alignment="bottom")
    episodes = int(left.number_input(tr("Lake episodes"), min_value=10, max_value=5000, value=200, step=100, key="rn_lake_episodes"))
    # test-time copies are embeddings' to average and align: other learners score each episode as a whole
    embeds = learner_class(config.learner.method).embedding_only
    preset = middle.selectbox(
        tr("At test time"),
        list(LAKE_PRESETS) if embeds else ["plain"],
        format_func=preset_label,
        key="rn_lake_preset",
        help=tr(
            "Copies: each image also as {n} slightly rotated, scaled and shifted copies; aligned: each pair scored by its "
            "best-matching copies. Balanced also uses that each character has exactly one query, which the published "
            "figures do not.",
            n=ALIGNED.tta,
        ),
    )
    options = LAKE_PRESETS[preset]
    checkpoints = run.checkpoints()
    if config.train.dataset in LAKE_DATASETS and right.button(
        tr("Evaluate on Lake's test"),
        key="rn_lake",
        icon=":material/fact_check:",
        disabled=not checkpoints,
        help=None if checkpoints else tr("no checkpoint yet"),
    ):
        with st.spinner(tr("Scoring {n} Lake episodes of the test alphabets…", n=episodes)):
            try:
                learner = loaders.learner(state.LearnerRef(str(run.path), None, config.learner.method))
                choice = loaders.run_data_choice(config)
                classes = loaders.class_split(choice, config.train.split_seed).classes("test")
                result = evaluate_lake(learner, loaders.image_set(choice), classes, episodes, seed=0, options=options)
                store_result(run, result, "test", options, checkpoints[-1].step, seed=0)
                results = stored_results(run)
            except USER_ERRORS as exc:
                show_error(exc)
    if results:
        st.plotly_chart(lake_chart(results, reference_errors()), key="rn_lake_chart")
