"""Embeddings: the learner's space flattened to 2-D (PCA, t-SNE, UMAP), before and after training, and its export."""

import contextlib

import numpy as np
import streamlit as st
import torch

from core.analysis.distances import learner_metric, nearest_neighbours
from core.analysis.embeddings import PointSet
from core.analysis.export import coordinates_csv, projector_files, zip_files
from core.analysis.projection import METHOD_LABELS, METHODS, ProjectionParams, align, fitted_params, params_dict, sample_for
from core.analysis.warmup import start_warmup
from core.data import SPLIT_NAMES
from core.store import RunDir
from dashboard import loaders, state, widgets
from dashboard.charts.images import thumbnail
from dashboard.charts.space import category_colors, embedding_scatter, selected_rows
from dashboard.charts.training import inner_loop_curves
from dashboard.hover import MAX_POINTS as HOVER_MAX_POINTS
from dashboard.hover import hover_images

EXPECTED_S_PER_POINT = {"tsne": 0.006, "umap": 0.004}  # on a loaded 2-core CPU: only for the progress bar
FALLBACK = "protonet"  # the learner shown when no run is chosen (untrained)
VIEWS = {"current": "this learner", "compare": "untrained vs trained", "steps": "over checkpoints", "adapt": "before / after adapting"}
COLOURS = {"class": "class", "group": "support / query or split", "outcome": "correct / wrong"}

with contextlib.suppress(*widgets.USER_ERRORS):  # reported below, where the page loads its data
    loaders.current_episode(state.data_choice())  # drawn before the sidebar, so the sidebar names it
widgets.sidebar()
st.title("Embeddings")
st.caption(
    "A learner turns each image into a point in its embedding space; this page flattens that space to 2-D. "
    "Click a point, or draw a box or lasso around some (tools above the chart), to see their images."
)
choice = state.data_choice()
ref = state.learner_ref()
with widgets.reported():
    image_set = loaders.image_set(choice)
    learner, described = loaders.analysed_learner(ref, choice, FALLBACK)
if ref.run_dir is None:
    st.info(f"Learner: {described}. Train one on the Train page, or pick a run on the Runs page, to see a learned space.")
else:
    st.caption(f"Learner: {described}.")

left, mid, right = st.columns([1.4, 1, 1])
source = left.radio(
    "Points",
    ["episode", "sample"],
    horizontal=True,
    key="em_source",
    format_func={"episode": "the current episode", "sample": "a sample of splits"}.get,
)
method = mid.radio("Projection", METHODS, horizontal=True, key="em_method", format_func=METHOD_LABELS.get)
if method != "pca":  # compile t-SNE / UMAP code beside the page: not at start-up, where it costs ~300 MB and CPU for all
    start_warmup()
colour_by = right.radio("Colour by", list(COLOURS), horizontal=True, key="em_colour", format_func=COLOURS.get)
cols = st.columns(5)
links_on = False
if source == "sample":
    splits = cols[0].multiselect("Splits", SPLIT_NAMES, default=[state.split()], key="em_splits")
    n_points = int(cols[1].number_input("Number of points", min_value=50, max_value=50_000, value=2000, step=500, key="em_n"))
    sample_seed = int(cols[2].number_input("Sample seed", min_value=0, value=0, key="em_sample_seed"))
else:
    with widgets.reported():
        spec = loaders.current_episode(choice)
    links_on = cols[0].checkbox("Lines to nearest prototype", value=True, key="em_links")
metric = cols[3].selectbox("Metric", ["euclidean", "cosine"], index=int(learner_metric(learner) == "cosine"), key="em_metric")
seed = int(cols[4].number_input("Projection seed", min_value=0, value=0, key="em_seed"))
with st.expander(f"{METHOD_LABELS[method]} settings", expanded=method != "pca"):
    a, b = st.columns(2)
    perplexity = a.slider("t-SNE perplexity", 2, 100, 30, key="em_perplexity", disabled=method != "tsne")
    n_neighbors = a.slider("UMAP n_neighbors", 2, 200, 15, key="em_neighbors", disabled=method != "umap")
    min_dist = b.slider("UMAP min_dist", 0.0, 1.0, 0.1, step=0.05, key="em_min_dist", disabled=method != "umap")
params = ProjectionParams(perplexity=float(perplexity), n_neighbors=n_neighbors, min_dist=min_dist, metric=metric)
views = ["current", *(["compare", "steps"] if ref.run_dir else []), *(["adapt"] if loaders.adapts(learner) and source == "episode" else [])]
view = st.radio("Show", views, horizontal=True, key="em_view", format_func=VIEWS.get, disabled=len(views) == 1)


def points_of(r: state.LearnerRef) -> PointSet:
    stamp = loaders.learner_stamp(r)
    if source == "episode":
        return loaders.episode_points(r, choice, spec, FALLBACK, stamp)
    if not splits:
        st.info("Choose at least one split to sample from.")
        st.stop()
    with st.spinner(f"Embedding {n_points:,} images…"):
        return loaders.sample_points(r, choice, tuple(splits), n_points, sample_seed, FALLBACK, stamp)


waiting = []  # slow projections still computing in the background: PCA stands in for them meanwhile


def project(points: PointSet) -> tuple[np.ndarray, np.ndarray | None]:
    """2-D coordinates of the points and of the prototypes, projected together."""
    x = points.z if points.prototypes is None else np.concatenate([points.z, points.prototypes])
    y = loaders.projection_now(x, method, params, seed)
    if y is None:
        waiting.append(len(x))
        y = loaders.projection_now(x, "pca", params, seed)
    return y[: len(points)], None if points.prototypes is None else y[len(points) :]


@st.fragment(run_every=1.0)
def projection_progress() -> None:
    """Polls the background projections; when they are done the whole page redraws with them."""
    running = loaders.projection_jobs().running()
    if not running:
        st.rerun()
    label = METHOD_LABELS[method]
    settings = params_dict(fitted_params(method, params, max(waiting)), method)
    seconds = max(j.seconds for j in running)
    st.info(
        f"{label} of {max(waiting):,} points ({settings}) is computing in the background: {seconds:.0f} s so far. "
        f"PCA is shown until it is ready; everything on the page keeps working.",
        icon=":material/hourglass_top:",
    )
    st.progress(min(seconds / max(EXPECTED_S_PER_POINT[method] * max(waiting), 1.0), 0.95), text="about how far along")


def figure(points: PointSet, coords: np.ndarray, protos: np.ndarray | None, title: str = ""):
    names = {c: widgets.class_label(image_set, c) for c in np.unique(points.class_ids).tolist()}
    labels = [names[c] for c in points.class_ids.tolist()]
    colour = {"class": labels, "group": points.group, "outcome": points.outcome()}[colour_by]
    proto_labels = [names.get(c, str(c)) for c in (points.prototype_class_ids if protos is not None else [])]
    links = []
    if protos is not None and links_on:
        where = {c: j for j, c in enumerate(points.prototype_class_ids.tolist())}
        links = [(i, where[p]) for i, p in enumerate(points.predicted.tolist()) if points.group[i] == "query" and p in where]
    colors = category_colors(list(colour)) if colour_by != "class" else category_colors(list(names.values()))
    return embedding_scatter(coords, colour, labels, points.image_idx, points.group, protos, proto_labels, links, colors, title)


with widgets.reported():
    run_refs, others = {}, {}
    if view == "adapt":  # the inner loop of this episode: the space the head reads before and after adapting
        trace, before, after = loaders.adaptation(ref, choice, spec, FALLBACK, loaders.learner_stamp(ref))
        st.markdown(f"**The inner loop on this episode** · {len(trace) - 1} steps on the support set")
        st.plotly_chart(inner_loop_curves(trace), key="em_inner_loop")
        moved = not np.array_equal(before.z, after.z)
        st.caption(
            "Step 0 is the meta-learned start (its head is all zeros, so every query gets the same guess). "
            + ("Every weight adapts, so the points move: the features after adapting are what the adapted head reads." if moved
               else "Only the head adapts, so the points stay put: what changes is which queries are right.")
        )  # fmt: skip
        others = {"before adapting": before}
        last = ref
    elif view != "current":
        steps = [loaders.INITIAL_STEP] + [c.step for c in RunDir(ref.run_dir).checkpoints()]
        if view == "compare":
            run_refs = {"untrained": state.LearnerRef(ref.run_dir, loaders.INITIAL_STEP, ref.method)}
        else:
            step = st.select_slider("Checkpoint (step 0: before training)", steps, value=steps[-1], key="em_step")
            run_refs = {f"step {step}": state.LearnerRef(ref.run_dir, step, ref.method)}
        last = state.LearnerRef(ref.run_dir, ref.step if view == "compare" else steps[-1], ref.method)
    else:
        last = ref
    points = after if view == "adapt" else points_of(last)
    if source == "sample":
        st.caption(
            f"{len(points):,} images of the {' and '.join(splits)} split{'s' * (len(splits) > 1)}. Without a support set, a point is "
            "“correct” when the nearest class mean among the sampled classes (leave-one-out) is its own class."
        )
    rows = sample_for(method, len(points), seed)
    if rows is not None:
        st.caption(
            f"{METHOD_LABELS[method]} runs on a seeded sample of {len(rows):,} of {len(points):,} points, "
            "as TensorBoard's projector does; PCA shows them all."
        )
        points = points.subset(rows)
    coords, protos = project(points)
    shown = {"main": (points, coords, protos)}
    others.update({name: points_of(other) for name, other in run_refs.items()})
    for name, other_points in others.items():
        other_points = other_points.subset(rows) if rows is not None else other_points
        o_coords, o_protos = project(other_points)
        stacked = np.concatenate([o_coords, o_protos]) if o_protos is not None else o_coords
        target = np.concatenate([coords, protos]) if protos is not None else coords
        aligned = align(target, stacked)  # turned to match the trained view, so nothing flips
        shown[name] = (other_points, aligned[: len(o_coords)], None if o_protos is None else aligned[len(o_coords) :])

if waiting:
    projection_progress()
chart_kw = {"on_select": "rerun", "selection_mode": ("points", "box", "lasso")}
if view in ("compare", "adapt"):
    before_name, titles = ("untrained", ("untrained (initial weights)", f"trained ({described})"))
    if view == "adapt":
        before_name, titles = "before adapting", ("before adapting (step 0)", f"after {len(trace) - 1} inner steps")
    a, b = st.columns(2)
    a.plotly_chart(figure(*shown[before_name], title=titles[0]), key="em_chart_before")
    with a:
        hover_images("em_chart_before", image_set.images, shown[before_name][0].image_idx, repr(choice))
    with b:
        event = st.plotly_chart(figure(*shown["main"], title=titles[1]), key="em_chart", **chart_kw)
        hovering = hover_images("em_chart", image_set.images, shown["main"][0].image_idx, repr(choice))
    side = st.container()
else:
    if view == "steps":
        points, coords, protos = shown[next(iter(run_refs))]
        st.caption("Each checkpoint is projected on its own, then turned (Procrustes) to match the last one.")
    chart_col, side = st.columns([3, 1])
    with chart_col:
        event = st.plotly_chart(figure(points, coords, protos), key="em_chart", **chart_kw)
        hovering = hover_images("em_chart", image_set.images, points.image_idx, repr(choice))
if not hovering:
    st.caption(f"Images on hover are off above {HOVER_MAX_POINTS:,} points; click a point, or draw a box or lasso, to see images.")

picked = [r for r in selected_rows(event) if r < len(points)]  # a selection made on an earlier, larger view is dropped
with side:
    st.markdown("**Inspect a point**")
    options = picked or list(range(len(points)))
    row = st.selectbox(
        "Point", options, key="em_point", format_func=lambda i: f"#{i} · {widgets.class_label(image_set, int(points.class_ids[i]))}"
    )
    index = int(points.image_idx[row])
    st.image(
        thumbnail(image_set.images[index], scale=4),
        width=140,
        caption=f"{widgets.class_label(image_set, int(points.class_ids[row]))} · image #{index} · {points.group[row]}",
    )
    nn_metric = st.radio("Neighbours by", ["euclidean", "cosine"], horizontal=True, key="em_nn_metric")
    k = st.slider("Neighbours", 1, 24, 8, key="em_k")
    near, dist = nearest_neighbours(points.z, row, k, nn_metric)
    st.caption(f"Nearest in the original {points.z.shape[1]}-d space:")
    st.image(
        [thumbnail(image_set.images[int(points.image_idx[j])], scale=2) for j in near],
        caption=[f"{image_set.class_names[points.class_ids[j]]} · {d:.3g}" for j, d in zip(near, dist, strict=True)],
        width=96,
    )

if picked:
    st.subheader(f"{len(picked)} selected point{'s' * (len(picked) > 1)}")
    shown_rows = picked[:120]
    st.image(
        [thumbnail(image_set.images[int(points.image_idx[j])], scale=2) for j in shown_rows],
        caption=[image_set.class_names[points.class_ids[j]] for j in shown_rows],
        width=80,
    )
    if len(picked) > len(shown_rows):
        st.caption(f"The first {len(shown_rows)} of {len(picked)} are shown.")

st.subheader("Export what is shown")
meta = {
    "class": [widgets.class_label(image_set, int(c)) for c in points.class_ids],
    "class_id": points.class_ids.tolist(),
    "image": points.image_idx.tolist(),
    "group": points.group.tolist(),
    "outcome": points.outcome().tolist(),
}
a, b = st.columns(2)
a.download_button(
    "TensorBoard projector files (.zip)",
    data=lambda: zip_files(projector_files(points.z, meta, image_set.images[torch.as_tensor(points.image_idx)])),
    file_name="metascope-projector.zip",
    mime="application/zip",
    key="em_export_projector",
    on_click="ignore",
    icon=":material/download:",
    help="tensors.tsv, metadata.tsv, sprite.png and projector_config.pbtxt: load them in the Embedding Projector",
)
b.download_button(
    f"{METHOD_LABELS['pca' if waiting else method]} coordinates (.csv)",
    data=lambda: coordinates_csv(coords, meta),
    file_name=f"metascope-{'pca' if waiting else method}.csv",
    mime="text/csv",
    key="em_export_csv",
    on_click="ignore",
    icon=":material/download:",
)
