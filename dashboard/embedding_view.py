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

EXPECTED_S_PER_POINT = {"tsne": 0.006, "umap": 0.004}  # on a loaded 2-core CPU: only for the progress bar
FALLBACK = "protonet"  # the learner shown when no run is chosen (untrained)
VIEWS = {"current": "this learner", "compare": "untrained vs trained", "steps": "over checkpoints", "adapt": "before / after adapting"}
COLOURS = {"class": "class", "group": "support / query or split", "outcome": "correct / wrong"}


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
    labels = {"episode": "the current episode", "sample": "a sample of splits"}
    source = left.radio("Points", ["episode", "sample"], horizontal=True, key="em_source", format_func=labels.get)
    method = mid.radio("Projection", METHODS, horizontal=True, key="em_method", format_func=METHOD_LABELS.get)
    if method != "pca":  # compile t-SNE / UMAP code beside the page: not at start-up, where it costs ~300 MB and CPU for all
        start_warmup()
    colour_by = right.radio("Colour by", list(COLOURS), horizontal=True, key="em_colour", format_func=COLOURS.get)
    cols = st.columns(5)
    sample: dict[str, Any] = {}
    if source == "sample":
        sample["splits"] = tuple(cols[0].multiselect("Splits", SPLIT_NAMES, default=[state.split()], key="em_splits"))
        sample["n_points"] = int(cols[1].number_input("Number of points", min_value=50, max_value=50_000, value=2000, step=500, key="em_n"))
        sample["sample_seed"] = int(cols[2].number_input("Sample seed", min_value=0, value=0, key="em_sample_seed"))
    else:
        sample["links"] = cols[0].checkbox("Lines to nearest prototype", value=True, key="em_links")
    metric = cols[3].selectbox("Metric", ["euclidean", "cosine"], index=int(learner_metric(learner) == "cosine"), key="em_metric")
    seed = int(cols[4].number_input("Projection seed", min_value=0, value=0, key="em_seed"))
    with st.expander(f"{METHOD_LABELS[method]} settings", expanded=method != "pca"):
        a, b = st.columns(2)
        perplexity = a.slider("t-SNE perplexity", 2, 100, 30, key="em_perplexity", disabled=method != "tsne")
        n_neighbors = a.slider("UMAP n_neighbors", 2, 200, 15, key="em_neighbors", disabled=method != "umap")
        min_dist = b.slider("UMAP min_dist", 0.0, 1.0, 0.1, step=0.05, key="em_min_dist", disabled=method != "umap")
    params = ProjectionParams(perplexity=float(perplexity), n_neighbors=n_neighbors, min_dist=min_dist, metric=metric)
    return Controls(source, method, colour_by, params, seed, **sample)


def points_of(ref: state.LearnerRef, ctl: Controls) -> PointSet:
    """The points the controls ask for, embedded by the learner `ref`."""
    choice = state.data_choice()
    if ctl.source == "episode":
        return loaders.episode_points(ref, choice, loaders.current_episode(choice), FALLBACK)
    if not ctl.splits:
        st.info("Choose at least one split to sample from.")
        st.stop()
    with st.spinner(f"Embedding {ctl.n_points:,} images…"):
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
            settings = ", ".join(f"{k} {v}" for k, v in params_dict(fitted_params(method, self.ctl.params, n), method).items())
            seconds = max(j.seconds for j in running)
            st.info(
                f"{METHOD_LABELS[method]} of {n:,} points ({settings}) is computing in the background: {seconds:.0f} s so far. "
                "PCA is shown until it is ready; everything on the page keeps working.",
                icon=":material/hourglass_top:",
            )
            st.progress(min(seconds / max(EXPECTED_S_PER_POINT[method] * n, 1.0), 0.95), text="about how far along")

        poll()


def comparisons(ref: state.LearnerRef, view: str) -> tuple[dict[str, state.LearnerRef], state.LearnerRef]:
    """(other learners to show beside, by title; the learner of the main view) for 'compare' and 'steps'."""
    if view == "current":
        return {}, ref
    steps = [loaders.INITIAL_STEP] + [c.step for c in RunDir(ref.run_dir).checkpoints()]
    if view == "compare":
        return {"untrained": state.LearnerRef(ref.run_dir, loaders.INITIAL_STEP, ref.method)}, ref
    step = st.select_slider("Checkpoint (step 0: before training)", steps, value=steps[-1], key="em_step")
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
    st.caption(
        f"{METHOD_LABELS[ctl.method]} runs on a seeded sample of {len(rows):,} of {len(points):,} points, "
        "as TensorBoard's projector does; PCA shows them all."
    )
    return points.subset(rows), rows


def inspector(image_set: ImageSet, points: PointSet, picked: list[int]) -> None:
    """One point's image and its nearest neighbours in the original space."""
    st.markdown("**Inspect a point**")

    def describe(i: int) -> str:
        return f"#{i} · {class_label(image_set, int(points.class_ids[i]))} · image #{int(points.image_idx[i])}"

    row = st.selectbox("Point", picked or list(range(len(points))), key="em_point", format_func=describe)
    index = int(points.image_idx[row])
    st.image(thumbnail(image_set.images[index], scale=4), width=140, caption=f"{describe(row)} · {points.group[row]}")
    nn_metric = st.radio("Neighbours by", ["euclidean", "cosine"], horizontal=True, key="em_nn_metric")
    k = st.slider("Neighbours", 1, 24, 8, key="em_k")
    near, dist = nearest_neighbours(points.z, row, k, nn_metric)
    st.caption(f"Nearest in the original {points.z.shape[1]}-d space:")
    st.image(
        [thumbnail(image_set.images[int(points.image_idx[j])], scale=2) for j in near],
        caption=[f"{image_set.class_names[points.class_ids[j]]} · {d:.3g}" for j, d in zip(near, dist, strict=True)],
        width=96,
    )


def selection(image_set: ImageSet, points: PointSet, picked: list[int], limit: int = 120) -> None:
    """The images of the points selected on the chart."""
    st.subheader(f"{len(picked)} selected point{'s' * (len(picked) > 1)}")
    shown = picked[:limit]
    st.image(
        [thumbnail(image_set.images[int(points.image_idx[j])], scale=2) for j in shown],
        caption=[image_set.class_names[points.class_ids[j]] for j in shown],
        width=80,
    )
    if len(picked) > len(shown):
        st.caption(f"The first {len(shown)} of {len(picked)} are shown.")


def exports(image_set: ImageSet, points: PointSet, coords: np.ndarray, method: str) -> None:
    """Download what is shown: TensorBoard projector files, and the 2-D coordinates as CSV."""
    st.subheader("Export what is shown")
    meta = {
        "class": [class_label(image_set, int(c)) for c in points.class_ids],
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
        f"{METHOD_LABELS[method]} coordinates (.csv)",
        data=lambda: coordinates_csv(coords, meta),
        file_name=f"metascope-{method}.csv",
        mime="text/csv",
        key="em_export_csv",
        on_click="ignore",
        icon=":material/download:",
    )
