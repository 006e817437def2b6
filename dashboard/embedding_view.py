"""The Embeddings page's pieces: its controls, projecting point sets (slow methods in the background), the
views to compare, the scatter figure, the point inspector and the exports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st
import torch

from core.analysis.distances import learner_metric, nearest_neighbours
from core.analysis.embeddings import PointSet
from core.analysis.export import coordinates_csv, projector_files, zip_files
from core.analysis.projection import METHOD_LABELS, METHODS, ProjectionParams, align, fitted_params, params_dict, sample_for
from core.analysis.warmup import start_warmup
from core.data import SPLIT_NAMES, ImageSet
from core.learners import MetaLearner
from core.store import RunDir
from dashboard import loaders, state
from dashboard.charts.images import thumbnail
from dashboard.charts.space import category_colors, embedding_scatter
from dashboard.episode_view import class_label
from dashboard.i18n import N_, tr
from dashboard.inputs import listing_key
from dashboard.labels import SPLITS

EXPECTED_S_PER_POINT = {"tsne": 0.006, "umap": 0.004}  # on a loaded 2-core CPU: only for the progress bar
FALLBACK = "protonet"  # the learner shown when no run is chosen (untrained)
VIEWS = {
    "current": N_("this learner"),
    "compare": N_("untrained vs trained"),
    "steps": N_("over checkpoints"),
    "adapt": N_("before / after adapting"),
}
COLOURS = {"class": N_("class"), "group": N_("support / query or split"), "outcome": N_("correct / wrong")}
SOURCES = {"episode": N_("the current episode"), "sample": N_("a sample of splits")}
PARAM_NAMES = {"perplexity": N_("perplexity"), "n_neighbors": N_("neighbours"), "min_dist": N_("minimum distance"), "metric": N_("metric")}


@dataclass(frozen=True)
class Controls:
    """What the user chose at the top of the page."""

    source: str  # episode | sample
    method: str  # pca | tsne | umap
    colour_by: str
    params: ProjectionParams
    seed: int
    links: bool = False
    splits: tuple[str, ...] = ()
    n_points: int = 0
    sample_seed: int = 0


def controls(learner: MetaLearner) -> Controls:
    """The page's settings row and the projection's own settings."""
    left, mid, right = st.columns([1.4, 1, 1])
    source = left.radio(tr("Points"), ["episode", "sample"], horizontal=True, key="em_source", format_func=lambda v: tr(SOURCES[v]))
    method = mid.radio(tr("Projection"), METHODS, horizontal=True, key="em_method", format_func=METHOD_LABELS.get)
    if method != "pca":  # compile t-SNE / UMAP code beside the page: not at start-up, where it costs ~300 MB and CPU for all
        start_warmup()
    colour_by = right.radio(tr("Colour by"), list(COLOURS), horizontal=True, key="em_colour", format_func=lambda v: tr(COLOURS[v]))
    cols = st.columns(5)
    sample: dict[str, Any] = {}
    if source == "sample":
        splits = cols[0].multiselect(
            tr("Splits"), SPLIT_NAMES, default=[state.split()], key="em_splits", format_func=lambda v: tr(SPLITS[v])
        )
        sample["splits"] = tuple(splits)
        n_points = cols[1].number_input(tr("Number of points"), min_value=50, max_value=50_000, value=2000, step=500, key="em_n")
        sample["n_points"] = int(n_points)
        sample["sample_seed"] = int(cols[2].number_input(tr("Sample seed"), min_value=0, value=0, key="em_sample_seed"))
    else:
        sample["links"] = cols[0].checkbox(tr("Lines to nearest prototype"), value=True, key="em_links")
    metrics = ["euclidean", "cosine"]
    metric = cols[3].selectbox(tr("Metric"), metrics, index=int(learner_metric(learner) == "cosine"), key="em_metric", format_func=tr)
    seed = int(cols[4].number_input(tr("Projection seed"), min_value=0, value=0, key="em_seed"))
    defaults = ProjectionParams()
    perplexity, n_neighbors, min_dist = defaults.perplexity, defaults.n_neighbors, defaults.min_dist
    if method != "pca":  # only the chosen method's own settings: nothing greyed out
        with st.expander(tr("{method} settings", method=METHOD_LABELS[method]), expanded=True):
            a, b = st.columns(2)
            if method == "tsne":
                perplexity = a.slider(tr("Perplexity: the neighbours each point keeps"), 2, 100, 30, key="em_perplexity")
            else:
                n_neighbors = a.slider(tr("Neighbours: the size of the neighbourhood kept"), 2, 200, 15, key="em_neighbors")
                min_dist = b.slider(tr("Minimum distance: how tightly points pack"), 0.0, 1.0, 0.1, step=0.05, key="em_min_dist")
    params = ProjectionParams(perplexity=float(perplexity), n_neighbors=n_neighbors, min_dist=min_dist, metric=metric)
    return Controls(source, method, colour_by, params, seed, **sample)


def points_of(ref: state.LearnerRef, ctl: Controls) -> PointSet:
    """The points the controls ask for, embedded by the learner `ref`."""
    choice = state.data_choice()
    if ctl.source == "episode":
        return loaders.episode_points(ref, choice, loaders.current_episode(choice), FALLBACK)
    if not ctl.splits:
        st.info(tr("Choose at least one split to sample from."))
        st.stop()
    with st.spinner(tr("Embedding {n} images…", n=f"{ctl.n_points:,}")):
        return loaders.sample_points(ref, choice, ctl.splits, ctl.n_points, ctl.sample_seed, FALLBACK)


@dataclass
class Projector:
    """Projects point sets with the chosen method; where a slow one is still computing in the background,
    PCA stands in and `waiting` records how many points are waited for."""

    ctl: Controls
    waiting: list[int] = field(default_factory=list)

    def project(self, points: PointSet) -> tuple[np.ndarray, np.ndarray | None]:
        """2-D coordinates of the points and of the prototypes, projected together."""
        x = points.z if points.prototypes is None else np.concatenate([points.z, points.prototypes])
        y = loaders.projection_now(x, self.ctl.method, self.ctl.params, self.ctl.seed)
        if y is None:
            self.waiting.append(len(x))
            y = loaders.projection_now(x, "pca", self.ctl.params, self.ctl.seed)
        return y[: len(points)], None if points.prototypes is None else y[len(points) :]

    def aligned(self, points: PointSet, target: tuple[np.ndarray, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray | None]:
        """project(points), turned (Procrustes) to match `target`'s coordinates, so that nothing flips."""
        coords, protos = self.project(points)
        stacked = np.concatenate([coords, protos]) if protos is not None else coords
        goal = np.concatenate([target[0], target[1]]) if target[1] is not None else target[0]
        turned = align(goal, stacked)
        return turned[: len(coords)], None if protos is None else turned[len(coords) :]

    def progress(self) -> None:
        """Polls the background projections; when they are done the whole page redraws with them."""
        method, n = self.ctl.method, max(self.waiting)

        @st.fragment(run_every=1.0)
        def poll() -> None:
            running = loaders.projection_jobs().running()
            if not running:
                st.rerun()
            seconds = max(j.seconds for j in running)
            st.info(
                tr("{method} of {n} points ({settings}) is computing in the background: {seconds} s so far. "
                   "PCA is shown until it is ready; everything on the page keeps working.", method=METHOD_LABELS[method],
                   n=f"{n:,}", settings=settings_text(method, self.ctl.params, n), seconds=f"{seconds:.0f}"),
                icon=":material/hourglass_top:",
            )  # fmt: skip
            st.progress(min(seconds / max(EXPECTED_S_PER_POINT[method] * n, 1.0), 0.95), text=tr("about how far along"))

        poll()


def settings_text(method: str, params: ProjectionParams, n: int) -> str:
    """'perplexity 11.3 (30 asked: at most a third of the 35 points), metric euclidean': the settings in use, in words."""
    fitted = params_dict(fitted_params(method, params, n), method)
    asked = params_dict(params, method)
    parts = []
    for key, value in fitted.items():
        text = f"{tr(PARAM_NAMES[key])} {value:.3g}" if isinstance(value, float) else f"{tr(PARAM_NAMES[key])} {tr(str(value))}"
        if value != asked[key]:
            text += " " + tr("({asked} asked: {n} points allow no more)", asked=asked[key], n=n)
        parts.append(text)
    return ", ".join(parts)


def comparisons(ref: state.LearnerRef, view: str) -> tuple[dict[str, state.LearnerRef], state.LearnerRef]:
    """(other learners to show beside, by title; the learner of the main view) for 'compare' and 'steps'."""
    if view == "current":
        return {}, ref
    steps = [loaders.INITIAL_STEP] + [c.step for c in RunDir(ref.run_dir).checkpoints()]
    if view == "compare":
        return {"untrained": state.LearnerRef(ref.run_dir, loaders.INITIAL_STEP, ref.method)}, ref
    step = st.select_slider(tr("Checkpoint (step 0: before training)"), steps, value=steps[-1], key="em_step")
    return {f"step {step}": state.LearnerRef(ref.run_dir, step, ref.method)}, state.LearnerRef(ref.run_dir, steps[-1], ref.method)


def figure(image_set: ImageSet, ctl: Controls, points: PointSet, coords: np.ndarray, protos: np.ndarray | None, title: str = ""):
    """The scatter of `points` at `coords` (prototypes at `protos`), coloured as the controls say."""
    names = {c: class_label(image_set, c) for c in np.unique(points.class_ids).tolist()}
    labels = [names[c] for c in points.class_ids.tolist()]
    colour = {"class": labels, "group": points.group, "outcome": points.outcome()}[ctl.colour_by]
    proto_labels = [names.get(c, str(c)) for c in (points.prototype_class_ids if protos is not None else [])]
    links = []
    if protos is not None and ctl.links:
        where = {c: j for j, c in enumerate(points.prototype_class_ids.tolist())}
        links = [(i, where[p]) for i, p in enumerate(points.predicted.tolist()) if points.group[i] == "query" and p in where]
    colors = category_colors(list(colour)) if ctl.colour_by != "class" else category_colors(list(names.values()))
    return embedding_scatter(coords, colour, labels, points.image_idx, points.group, protos, proto_labels, links, colors, title)


def subset_for(ctl: Controls, points: PointSet) -> tuple[PointSet, np.ndarray | None]:
    """The points the slow methods run on (a seeded sample above their limit, said on the page), and those rows."""
    rows = sample_for(ctl.method, len(points), ctl.seed)
    if rows is None:
        return points, None
    st.caption(tr(
        "{method} runs on a seeded sample of {n} of {total} points, as TensorBoard's projector does; PCA shows them all.",
        method=METHOD_LABELS[ctl.method], n=f"{len(rows):,}", total=f"{len(points):,}",
    ))  # fmt: skip
    return points.subset(rows), rows


def inspector(image_set: ImageSet, points: PointSet, picked: list[int]) -> None:
    """One point's image and its nearest neighbours in the original space.

    The box and the picture always name the same point: the box is keyed by the points it lists, so other points (a new
    episode, another view) get a new box (the browser would keep the old box's labels, the options' values being the
    same row numbers), and its value is put back among its options when a selection narrows them."""
    st.markdown(tr("**Inspect a point**"))

    def describe(i: int) -> str:
        return tr(
            "#{row} · {cls} · image #{image}", row=i, cls=class_label(image_set, int(points.class_ids[i])), image=int(points.image_idx[i])
        )

    options = picked or list(range(len(points)))
    box = listing_key("em_point", points.image_idx.tolist())
    if st.session_state.get(box) not in options:
        st.session_state[box] = options[0]
    row = st.selectbox(tr("Point"), options, key=box, format_func=describe)
    index = int(points.image_idx[row])
    st.image(thumbnail(image_set.images[index], scale=4), width=140, caption=f"{describe(row)} · {tr(str(points.group[row]))}")
    nn_metric = st.radio(tr("Neighbours by"), ["euclidean", "cosine"], horizontal=True, key="em_nn_metric", format_func=tr)
    k = st.slider(tr("Neighbours"), 1, 24, 8, key="em_k")
    near, dist = nearest_neighbours(points.z, row, k, nn_metric)
    st.caption(tr("Nearest in the original {d}-d space:", d=points.z.shape[1]))
    st.image(
        [thumbnail(image_set.images[int(points.image_idx[j])], scale=2) for j in near],
        caption=[f"{class_label(image_set, int(points.class_ids[j]))} · {d:.3g}" for j, d in zip(near, dist, strict=True)],
        width=96,
    )


def selection(image_set: ImageSet, points: PointSet, picked: list[int], limit: int = 120) -> None:
    """The images of the points selected on the chart."""
    st.subheader(tr("1 selected point") if len(picked) == 1 else tr("{n} selected points", n=len(picked)))
    shown = picked[:limit]
    st.image(
        [thumbnail(image_set.images[int(points.image_idx[j])], scale=2) for j in shown],
        caption=[class_label(image_set, int(points.class_ids[j])) for j in shown],
        width=80,
    )
    if len(picked) > len(shown):
        st.caption(tr("The first {n} of {total} are shown.", n=len(shown), total=len(picked)))


def exports(image_set: ImageSet, points: PointSet, coords: np.ndarray, method: str) -> None:
    """Download what is shown: TensorBoard projector files, and the 2-D coordinates as CSV."""
    st.subheader(tr("Export what is shown"))
    meta = {
        "class": [class_label(image_set, int(c)) for c in points.class_ids],
        "class_id": points.class_ids.tolist(),
        "image": points.image_idx.tolist(),
        "group": points.group.tolist(),
        "outcome": points.outcome().tolist(),
    }
    a, b = st.columns(2)
    a.download_button(
        tr("TensorBoard projector files (.zip)"),
        data=lambda: zip_files(projector_files(points.z, meta, image_set.images[torch.as_tensor(points.image_idx)])),
        file_name="metascope-projector.zip",
        mime="application/zip",
        key="em_export_projector",
        on_click="ignore",
        icon=":material/download:",
        help=tr("tensors.tsv, metadata.tsv, sprite.png and projector_config.pbtxt: load them in the Embedding Projector"),
    )
    b.download_button(
        tr("{method} coordinates (.csv)", method=METHOD_LABELS[method]),
        data=lambda: coordinates_csv(coords, meta),
        file_name=f"metascope-{method}.csv",
        mime="text/csv",
        key="em_export_csv",
        on_click="ignore",
        icon=":material/download:",
    )
