"""Cached access to the engine's heavy objects, shared by all pages.

st.cache_resource holds only read-only objects: datasets and learners loaded for inference
(in eval mode). A model being trained lives in its TrainingRun, never here.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import streamlit as st
import torch

from core.analysis.adaptation import adaptation as adapt_on_episode
from core.analysis.adaptation import adapts  # noqa: F401 - the pages ask loaders whether a learner adapts
from core.analysis.distances import EpisodeMatrices, episode_matrices, learner_metric
from core.analysis.embeddings import PointSet, embed_episode, embed_sample, sample_splits
from core.analysis.projection import ProjectionParams, project
from core.config import EpisodeShape, LearnerConfig, RunConfig
from core.data import ClassSplit, ImageSet, load_dataset, split_classes
from core.episodes import ClassPool, Episode, EpisodeSpec, draw_spec
from core.evaluation import EvalResult, evaluate
from core.experiment import load_learner
from core.learners import MetaLearner, make_learner
from core.store import RunDir
from core.tasks.study import StudyConfig, TaskStudy, run_study
from dashboard import state as session
from dashboard.state import DataChoice, LearnerRef

T = TypeVar("T")


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def image_set(choice: DataChoice) -> ImageSet:
    """The dataset (decoded once, cached on disk by core, in memory here)."""
    return load_dataset(choice.dataset, choice.data_dir, choice.image_size)


@st.cache_resource(max_entries=4)
def class_split(choice: DataChoice, seed: int = 0) -> ClassSplit:
    return split_classes(image_set(choice), seed)


def _mtime(path: str | None) -> float:
    """Part of cache keys: a checkpoint rewritten on disk must not be served stale."""
    return Path(path).stat().st_mtime if path and Path(path).exists() else 0.0


@st.cache_resource(show_spinner="Loading the learner…", max_entries=8)
def _load(run_dir: str, step: int | None, stamp: float = 0.0) -> MetaLearner:
    learner, _, _ = load_learner(run_dir, step)
    learner.requires_grad_(False)  # shared between sessions: nobody may train it
    return learner


def learner(ref: LearnerRef) -> MetaLearner | None:
    """The learner `ref` points to, loaded once per checkpoint; None when no run is chosen."""
    if ref.run_dir is None:
        return None
    return _load(ref.run_dir, ref.step, _stamp(ref))


def episode(choice: DataChoice, spec: EpisodeSpec) -> Episode:
    """The episode's tensors on the CPU."""
    return spec.build(image_set(choice), torch.device("cpu"))


@st.cache_resource(max_entries=4)
def class_pool(choice: DataChoice, split: str, split_seed: int = 0) -> ClassPool:
    """The classes of one split as a CPU pool (read-only: evaluation and analysis only index it)."""
    return ClassPool(image_set(choice), class_split(choice, split_seed).classes(split))


def run_data_choice(config: RunConfig) -> DataChoice:
    """The dataset a run was trained on, as a DataChoice (for its test pool and episodes)."""
    return DataChoice(config.train.dataset, config.train.data_dir, config.train.image_size)


# --- analysis: what the Embeddings and Distances pages compute (cached) --------------------------
# Each public function computes its own cache key: the learner's checkpoint stamp is part of it, so a
# checkpoint rewritten on disk is never served stale, and pages never handle stamps.

INITIAL_STEP = 0  # a LearnerRef step meaning "the run's seeded initial weights" (no checkpoint is step 0)


@st.cache_resource(max_entries=8)
def initial_learner(choice: DataChoice, config: LearnerConfig, seed: int = 0) -> MetaLearner:
    """`config`'s learner with the initial weights a run seeded `seed` starts from (read-only, eval mode)."""
    c, h, _ = image_set(choice).image_shape
    learner = make_learner(config, c, h, seed=seed).eval()
    learner.requires_grad_(False)
    return learner


def analysed_learner(ref: LearnerRef, choice: DataChoice, fallback: str = "protonet") -> tuple[MetaLearner, str]:
    """(learner, what it is in words) for `ref`: a checkpoint, a run's initial weights (step INITIAL_STEP),
    or, with no run chosen, an untrained `fallback` learner for `choice`."""
    if ref.run_dir is None:
        initial = initial_learner(choice, LearnerConfig(method=fallback))
        weights = "random weights" if any(True for _ in initial.parameters()) else "it has no weights to train"
        return initial, f"an untrained {fallback} (no run chosen; {weights})"
    name = Path(ref.run_dir).name
    if ref.step == INITIAL_STEP:
        config = RunDir(ref.run_dir).config()
        initial = initial_learner(run_data_choice(config), config.learner, config.train.seed)
        return initial, f"{name} before training (its seeded initial weights)"
    return learner(ref), f"{name} at step {ref.step if ref.step is not None else _latest_step(ref.run_dir)}"


def _latest_step(run_dir: str) -> int | str:
    saved = RunDir(run_dir).checkpoints()
    return saved[-1].step if saved else "?"


def _stamp(ref: LearnerRef) -> float:
    return _mtime(None if ref.run_dir is None else str(Path(ref.run_dir) / "checkpoints"))


def stamped(cached: Callable[..., T]) -> Callable[..., T]:
    """A cached loader whose first argument is a LearnerRef, called with that learner's checkpoint stamp as `stamp`."""

    @functools.wraps(cached)
    def call(ref: LearnerRef, *args: Any) -> T:
        return cached(ref, *args, stamp=_stamp(ref))

    return call


def current_episode(choice: DataChoice) -> EpisodeSpec:
    """The session's episode, or a fresh seeded draw from the current split and shape (made current)."""
    spec = session.episode()
    if spec is None:
        classes = class_split(choice).classes(session.split())
        spec = draw_spec(image_set(choice), classes, session.shape(), session.episode_seed())
        session.set_episode(spec)
    return spec


@stamped
@st.cache_data(max_entries=16, show_spinner="Embedding the episode…")
def episode_points(ref: LearnerRef, choice: DataChoice, spec: EpisodeSpec, fallback: str, stamp: float = 0.0) -> PointSet:
    """The episode's support and query images (and the prototypes) embedded by the learner."""
    return embed_episode(analysed_learner(ref, choice, fallback)[0], episode(choice, spec))


@stamped
@st.cache_data(max_entries=8, show_spinner=False)
def sample_points(
    ref: LearnerRef, choice: DataChoice, splits: tuple[str, ...], n: int, seed: int, fallback: str, stamp: float = 0.0
) -> PointSet:
    """A seeded sample of the splits' images, embedded."""
    learner_now = analysed_learner(ref, choice, fallback)[0]
    indices, groups = sample_splits(image_set(choice), class_split(choice), splits, n, seed)
    return embed_sample(learner_now, image_set(choice), indices, groups, learner_metric(learner_now))


def digest(array: np.ndarray) -> str:
    """A short content hash: projections are cached per embeddings, not per object."""
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).hexdigest() + str(array.shape)


def projection(x: np.ndarray, method: str, params: ProjectionParams, seed: int) -> np.ndarray:
    """project(x, ...) computed once per embeddings (by content), method, parameters and seed."""
    return _projection(x, digest(x), method, params, seed)


@st.cache_data(max_entries=64, show_spinner=False)
def _projection(_x: np.ndarray, key: str, method: str, params: ProjectionParams, seed: int) -> np.ndarray:
    """project(_x, ...) computed once per embeddings (key = digest(_x)), method, parameters and seed."""
    return project(_x, method, params, seed)


@stamped
@st.cache_data(max_entries=16, show_spinner="Computing the learner's comparisons…")
def matrices(ref: LearnerRef, choice: DataChoice, spec: EpisodeSpec, fallback: str, stamp: float = 0.0) -> EpisodeMatrices:
    """What the learner compares on the episode: query x class, query x support, support x support."""
    return episode_matrices(analysed_learner(ref, choice, fallback)[0], episode(choice, spec))


@stamped
@st.cache_data(max_entries=16, show_spinner=False)
def split_evaluation(
    ref: LearnerRef, choice: DataChoice, split: str, shape: EpisodeShape, episodes: int, fallback: str, stamp: float
) -> EvalResult:
    """evaluate() on `episodes` seeded episodes of the split: the confusion over many episodes."""
    return evaluate(analysed_learner(ref, choice, fallback)[0], class_pool(choice, split), shape, episodes, seed=0)


@stamped
@st.cache_data(max_entries=16, show_spinner="Adapting to the episode…")
def adaptation(
    ref: LearnerRef, choice: DataChoice, spec: EpisodeSpec, fallback: str, stamp: float = 0.0
) -> tuple[list, PointSet, PointSet]:
    """The learner's inner loop on the episode: core.analysis.adaptation.adaptation, cached."""
    return adapt_on_episode(analysed_learner(ref, choice, fallback)[0], episode(choice, spec))


@stamped
@st.cache_data(max_entries=4, show_spinner=False)
def task_study(ref: LearnerRef, config: StudyConfig, stamp: float = 0.0) -> TaskStudy:
    """The Tasks page's study of a run's learner (core.tasks.run_study), with a progress bar while it runs."""
    run = RunDir(ref.run_dir).config()
    choice = run_data_choice(run)
    bar = st.progress(0.0, "Starting…")  # made here: a cached function may only draw into what it creates
    progress = lambda stage, done, total: bar.progress(min(done / max(total, 1), 1.0), f"{stage}: {done}/{total}")
    result = run_study(learner(ref), image_set(choice), class_split(choice, run.train.split_seed), config, progress)
    bar.empty()
    return result


# --- slow projections (t-SNE, UMAP) run beside the page, which shows PCA meanwhile ----------------


@dataclass
class ProjectionJob:
    """One projection computing in the background: `future` gives float32 (n, 2); started is time.monotonic()."""

    future: Future
    started: float
    n: int

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


class ProjectionJobs:
    """Projections by (embeddings digest, method, params, seed), computed one at a time in a worker thread.

    Process-wide (st.cache_resource): a result is computed once for every session, and a page that
    is left or refreshed finds its job still running instead of starting another.
    """

    def __init__(self, keep: int = 64):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metascope-projection")
        self._jobs: OrderedDict[tuple, ProjectionJob] = OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep

    def job(self, x: np.ndarray, method: str, params: ProjectionParams, seed: int) -> ProjectionJob:
        key = (digest(x), method, params, seed)
        with self._lock:
            if key not in self._jobs:
                future = self._pool.submit(project, np.array(x, copy=True), method, params, seed)
                self._jobs[key] = ProjectionJob(future, time.monotonic(), len(x))
                while len(self._jobs) > self._keep:  # forget the oldest finished results
                    old = next((k for k, j in self._jobs.items() if j.future.done()), None)
                    if old is None:
                        break
                    del self._jobs[old]
            self._jobs.move_to_end(key)
            return self._jobs[key]

    def running(self) -> list[ProjectionJob]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.future.done()]


@st.cache_resource
def projection_jobs() -> ProjectionJobs:
    return ProjectionJobs()


def projection_now(x: np.ndarray, method: str, params: ProjectionParams, seed: int) -> np.ndarray | None:
    """(n, 2) coordinates of `x`: PCA at once; t-SNE / UMAP when their background job is done, else None.

    A failed job raises its error here (ProjectionError says what to change)."""
    if method == "pca":
        return projection(x, method, params, seed)
    job = projection_jobs().job(x, method, params, seed)
    return job.future.result() if job.future.done() else None
