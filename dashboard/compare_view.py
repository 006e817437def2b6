"""The Every learner page's pieces: which learners, its link, and the tables and chart of one episode through all of them.

The link carries the episode (as the lessons' links do: dataset, split, seed, N/K/Q, the episode itself when
hand-made), the runs compared (`learners=<run id>,<run id>`) and the language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from core.analysis.comparison import EpisodeComparison
from core.data import ImageSet
from core.episodes import EpisodeSpec
from core.store import CheckpointError, RunStore, is_run_id
from dashboard import share, state
from dashboard.charts.training import inner_accuracy_curves
from dashboard.episode_view import class_label, seeded
from dashboard.i18n import tr
from dashboard.learner_choice import trained_refs

MAX_DEFAULT = 6  # learners compared until the visitor chooses: a table still readable
EPISODE_KEYS = ("data", "dir", "split", "seed", "n", "k", "q", "ep")


def follow_link(query: Mapping[str, str]) -> list[str]:
    """Apply the address's episode and learners when the query string is new to the session; the problems found, in words."""
    key = share.canonical(query)
    if key == state.share_applied() or not any(name in query for name in (*EPISODE_KEYS, "learners")):
        return []
    state.set_share_applied(key)
    raw, problems = dict(query), []
    if any(name in raw for name in EPISODE_KEYS):
        ep = share.episode_from_query(raw, problems)
        state.set_data_choice(state.DataChoice(ep.dataset, ep.data_dir, state.data_choice().image_size))
        state.set_split(ep.split)
        state.set_shape(ep.shape)
        state.set_episode_seed(ep.seed)
        state.set_episode(ep.spec)  # None: drawn from the seed
    if "learners" in raw:
        wanted = [r for r in raw.pop("learners").split(",") if r]
        store = RunStore(state.runs_dir())
        here = [r for r in wanted if is_run_id(r) and (store.root / r / "config.json").exists()]
        problems += [tr("run '{run}' named by the link is not in {folder}; it is left out", run=r[:40], folder=store.root)
                     for r in wanted if r not in here]  # fmt: skip
        state.set_compare_runs(tuple(here))
    return problems


def link_query() -> dict[str, str]:
    """This view as query parameters: the episode, the learners compared, the language."""
    data, spec = state.data_choice(), state.episode()
    ep = share.EpisodeLink(data.dataset, data.data_dir, state.split(), state.episode_seed(), state.shape(),
                           None if spec is None or seeded(spec) else spec)  # fmt: skip
    query = share.episode_query(ep)
    if runs := state.compare_runs():
        query["learners"] = ",".join(runs)
    if state.lang() != "en":
        query["lang"] = state.lang()
    return query


def write_link(query: dict[str, str]) -> str:
    """Put `query` in the address bar (no rerun) and return the whole link."""
    key = share.canonical(query)
    if key != share.canonical(st.query_params.to_dict()):
        st.query_params.from_dict(query)
    state.set_share_applied(key)
    return share.link(st.context.url or "", query)


def short_name(run_id: str, method: str) -> str:
    """'protonet 21:35' from '20261204-213512-protonet-glyphs': a column title that fits."""
    stamp = run_id.split("-")[1] if run_id.count("-") >= 2 else ""
    return f"{method} {stamp[:2]}:{stamp[2:4]}" if len(stamp) == 6 and stamp.isdigit() else run_id


def choose_learners(image_set: ImageSet) -> tuple[tuple[state.LearnerRef, ...], tuple[str, ...]]:
    """The runs to compare (a multiselect over the visitor's runs that take these images) -> (refs, column names)."""
    c, h, _ = image_set.image_shape
    store = RunStore(state.runs_dir())
    linked = [state.LearnerRef(str(store.root / r), None, "") for r in state.compare_runs() or ()]
    fitting: dict[str, state.LearnerRef] = {}
    for ref in [*linked, *trained_refs()]:
        run_id = Path(ref.run_dir).name
        try:
            config = store.get(run_id).config()
        except CheckpointError:
            continue
        if config.train.image_size == h and run_id not in fitting:
            fitting[run_id] = state.LearnerRef(ref.run_dir, None, config.learner.method)
    names = {r: short_name(r, ref.method) for r, ref in fitting.items()}
    if len(set(names.values())) < len(names):
        names = {r: r for r in fitting}
    kept = [r for r in state.compare_runs() or () if r in fitting]  # a choice made at another image size takes none of these
    default = kept or list(fitting)[:MAX_DEFAULT]
    chosen = st.multiselect(
        tr("Learners"), list(fitting), default=default, format_func=names.get, key="cp_runs",
        help=tr("Your trained runs that take images of this dataset's size; the pixel baseline is always shown."),
    )  # fmt: skip
    state.set_compare_runs(tuple(chosen))
    refs = tuple(fitting[r] for r in chosen)
    return refs, tuple(names[r] for r in chosen)


def accuracy_table(result: EpisodeComparison, kinds: Sequence[str]) -> None:
    """Each learner's accuracy on this episode (and, with an inner loop, before and after adapting)."""
    rows = []
    for outcome, kind in zip(result.outcomes, kinds, strict=True):
        inner = outcome.inner_accuracy
        steps = "" if inner is None else f"{100 * inner[0]:.0f}% → {100 * inner[-1]:.0f}%"
        rows.append({tr("learner"): outcome.name, tr("accuracy on this episode"): outcome.accuracy,
                     tr("before → after adapting"): steps, tr("what"): kind})  # fmt: skip  # the figures first: a phone shows them
    bar = st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={tr("accuracy on this episode"): bar})


def prediction_table(result: EpisodeComparison, image_set: ImageSet, spec: EpisodeSpec) -> None:
    """One row per query: its true class and each learner's prediction (✓ / ✗); rows where the learners disagree are
    highlighted, wrong predictions in red."""
    classes = [class_label(image_set, c) for c in spec.class_ids]
    names = [o.name for o in result.outcomes]
    frame = pd.DataFrame(
        {tr("query"): [f"q{i}" for i in range(len(result.true))], tr("true class"): [classes[t] for t in result.true]}
        | {name: [f"{'✓' if p == t else '✗'} {classes[p]}" for p, t in zip(o.predicted, result.true, strict=True)]
           for name, o in zip(names, result.outcomes, strict=True)}
        | {tr("right"): [f"{r}/{len(names)}" for r in result.right]}
    )  # fmt: skip
    disagree = result.disagree

    def style(row: pd.Series) -> list[str]:
        base = "background-color: #fff3c4" if disagree[row.name] else ""
        return [f"{base}; color: #c62828" if str(v).startswith("✗") else base for v in row]

    st.dataframe(frame.style.apply(style, axis=1), hide_index=True)
    st.caption(tr("{n} of {total} queries split the learners (highlighted); ✗ marks a wrong prediction.",
                  n=int(disagree.sum()), total=len(disagree)))  # fmt: skip


def inner_loops(result: EpisodeComparison) -> None:
    """The MAML family's query accuracy after each inner step, one line per such learner."""
    curves = {o.name: o.inner_accuracy for o in result.outcomes if o.inner_accuracy is not None}
    if not curves:
        return
    st.subheader(tr("The inner loop of the MAML family"))
    st.caption(
        tr("Accuracy on this episode's queries before adapting (step 0: every query gets the same guess) and after each inner step.")
    )
    st.plotly_chart(inner_accuracy_curves(curves), key="cp_inner")


def baseline_kind() -> str:
    return tr("untrained baseline (nearest neighbour on raw pixels)")


def kinds_of(refs: Sequence[state.LearnerRef]) -> list[str]:
    return [tr("trained {method}", method=ref.method) for ref in refs] + [baseline_kind()]
