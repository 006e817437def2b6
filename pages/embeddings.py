"""Embeddings: the learner's space flattened to 2-D (PCA, t-SNE, UMAP), before and after training, and its export."""

import contextlib

import numpy as np
import streamlit as st

from dashboard import embedding_view as ev
from dashboard import errors, loaders, sidebar, state
from dashboard.charts.space import selected_rows
from dashboard.charts.training import inner_loop_curves
from dashboard.hover import MAX_POINTS as HOVER_MAX_POINTS
from dashboard.hover import hover_images

with contextlib.suppress(*errors.USER_ERRORS):  # reported below, where the page loads its data
    loaders.current_episode(state.data_choice())  # drawn before the sidebar, so the sidebar names it
sidebar.sidebar()
st.title("Embeddings")
st.caption(
    "A learner turns each image into a point in its embedding space; this page flattens that space to 2-D. "
    "Click a point, or draw a box or lasso around some (tools above the chart), to see their images."
)
choice, ref = state.data_choice(), state.learner_ref()
with errors.reported():
    image_set = loaders.image_set(choice)
    learner, described = loaders.analysed_learner(ref, choice, ev.FALLBACK)
    loaders.current_episode(choice)
if ref.run_dir is None:
    st.info(f"Learner: {described}. Train one on the Train page, or pick a run on the Runs page, to see a learned space.")
else:
    st.caption(f"Learner: {described}.")

ctl = ev.controls(learner)
views = [
    "current",
    *(["compare", "steps"] if ref.run_dir else []),
    *(["adapt"] if loaders.adapts(learner) and ctl.source == "episode" else []),
]
view = st.radio("Show", views, horizontal=True, key="em_view", format_func=ev.VIEWS.get, disabled=len(views) == 1)
projector = ev.Projector(ctl)
with errors.reported():
    others = {}
    if view == "adapt":  # the inner loop of this episode: the space the head reads before and after adapting
        trace, before, points = loaders.adaptation(ref, choice, loaders.current_episode(choice), ev.FALLBACK)
        st.markdown(f"**The inner loop on this episode** · {len(trace) - 1} steps on the support set")
        st.plotly_chart(inner_loop_curves(trace), key="em_inner_loop")
        st.caption(
            "Step 0 is the meta-learned start (its head is all zeros, so every query gets the same guess). "
            + ("Every weight adapts, so the points move: the features after adapting are what the adapted head reads."
               if not np.array_equal(before.z, points.z)
               else "Only the head adapts, so the points stay put: what changes is which queries are right.")
        )  # fmt: skip
        others = {"before adapting": before}
    else:
        compared, main_ref = ev.comparisons(ref, view)
        points = ev.points_of(main_ref, ctl)
        others = {name: ev.points_of(other, ctl) for name, other in compared.items()}
    if ctl.source == "sample":
        st.caption(
            f"{len(points):,} images of the {' and '.join(ctl.splits)} split{'s' * (len(ctl.splits) > 1)}. Without a support set, a point "
            "is “correct” when the nearest class mean among the sampled classes (leave-one-out) is its own class."
        )
    points, rows = ev.subset_for(ctl, points)
    main = projector.project(points)
    shown = {name: (other.subset(rows) if rows is not None else other) for name, other in others.items()}
    shown = {name: (other, *projector.aligned(other, main)) for name, other in shown.items()}

if projector.waiting:
    projector.progress()
chart_kw = {"on_select": "rerun", "selection_mode": ("points", "box", "lasso")}
if view in ("compare", "adapt"):
    before_name, titles = "untrained", ("untrained (initial weights)", f"trained ({described})")
    if view == "adapt":
        before_name, titles = "before adapting", ("before adapting (step 0)", f"after {len(trace) - 1} inner steps")
    a, b = st.columns(2)
    a.plotly_chart(ev.figure(image_set, ctl, *shown[before_name], title=titles[0]), key="em_chart_before")
    with a:
        hover_images("em_chart_before", image_set.images, shown[before_name][0].image_idx, repr(choice))
    with b:
        event = st.plotly_chart(ev.figure(image_set, ctl, points, *main, title=titles[1]), key="em_chart", **chart_kw)
        hovering = hover_images("em_chart", image_set.images, points.image_idx, repr(choice))
    side = st.container()
else:
    if view == "steps":
        points, *main = next(iter(shown.values()))
        st.caption("Each checkpoint is projected on its own, then turned (Procrustes) to match the last one.")
    chart_col, side = st.columns([3, 1])
    with chart_col:
        event = st.plotly_chart(ev.figure(image_set, ctl, points, *main), key="em_chart", **chart_kw)
        hovering = hover_images("em_chart", image_set.images, points.image_idx, repr(choice))
if not hovering:
    st.caption(f"Images on hover are off above {HOVER_MAX_POINTS:,} points; click a point, or draw a box or lasso, to see images.")

picked = [r for r in selected_rows(event) if r < len(points)]  # a selection made on an earlier, larger view is dropped
with side:
    ev.inspector(image_set, points, picked)
if picked:
    ev.selection(image_set, points, picked)
ev.exports(image_set, points, main[0], "pca" if projector.waiting else ctl.method)
