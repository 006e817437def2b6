"""Cached access to the engine's heavy objects, shared by all pages.

st.cache_resource holds only read-only objects: datasets and learners loaded for inference
(in eval mode). A model being trained lives in its TrainingRun, never here.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch
from torch.func import functional_call

from core.analysis.distances import EpisodeMatrices, episode_matrices, learner_metric
from core.analysis.embeddings import NO_PREDICTION, PointSet, embed_episode, embed_sample, sample_splits
from core.analysis.projection import ProjectionParams, project
from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.data import ClassSplit, ImageSet, load_dataset, split_classes
from core.episodes import ClassPool, Episode, EpisodeSpec, draw_spec
from core.evaluation import EvalResult, evaluate
from core.experiment import Experiment, load_learner
from core.learners import MetaLearner
from core.learners.functional import HEAD_KEYS, FastWeightLearner, Task
from core.learners.scoring import prototypes
from core.store import RunDir
from core.training.run import seeded_learner
from dashboard import state as session
from dashboard.state import DataChoice, LearnerRef


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
def _load(run_dir: str, step: int | None, stamp: float) -> MetaLearner:
    learner, _, _ = load_learner(run_dir, step)
    learner.requires_grad_(False)  # shared between sessions: nobody may train it
    return learner


def learner(ref: LearnerRef) -> MetaLearner | None:
    """The learner `ref` points to, loaded once per checkpoint; None when no run is chosen."""
    if ref.run_dir is None:
        return None
    return _load(ref.run_dir, ref.step, _mtime(str(Path(ref.run_dir) / "checkpoints")))


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

INITIAL_STEP = 0  # a LearnerRef step meaning "the run's seeded initial weights" (no checkpoint is step 0)


@st.cache_resource(max_entries=8)
def initial_learner(choice: DataChoice, config: LearnerConfig, seed: int = 0) -> MetaLearner:
    """`config`'s learner with the initial weights a run seeded `seed` starts from (read-only, eval mode)."""
    experiment = Experiment(image_set(choice), class_split(choice), torch.device("cpu"))
    train = TrainConfig(dataset=choice.dataset, data_dir=choice.data_dir, image_size=choice.image_size, seed=seed)
    learner = seeded_learner(experiment, RunConfig(config, train)).eval()
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


def learner_stamp(ref: LearnerRef) -> float:
    """Part of analysis cache keys: the run's checkpoints folder changes when a checkpoint is written."""
    return _mtime(None if ref.run_dir is None else str(Path(ref.run_dir) / "checkpoints"))


def current_episode(choice: DataChoice) -> EpisodeSpec:
    """The session's episode, or a fresh seeded draw from the current split and shape (made current)."""
    spec = session.episode()
    if spec is None:
        classes = class_split(choice).classes(session.split())
        spec = draw_spec(image_set(choice), classes, session.shape(), session.episode_seed())
        session.set_episode(spec)
    return spec


@st.cache_data(max_entries=16, show_spinner="Embedding the episode…")
def episode_points(ref: LearnerRef, choice: DataChoice, spec: EpisodeSpec, fallback: str, stamp: float) -> PointSet:
    return embed_episode(analysed_learner(ref, choice, fallback)[0], episode(choice, spec))


@st.cache_data(max_entries=8, show_spinner=False)
def sample_points(ref: LearnerRef, choice: DataChoice, splits: tuple[str, ...], n: int, seed: int, fallback: str, stamp: float) -> PointSet:
    """A seeded sample of the splits' images, embedded."""
    learner_now = analysed_learner(ref, choice, fallback)[0]
    indices, groups = sample_splits(image_set(choice), class_split(choice), splits, n, seed)
    return embed_sample(learner_now, image_set(choice), indices, groups, learner_metric(learner_now))


def digest(array: np.ndarray) -> str:
    """A short content hash: projections are cached per embeddings, not per object."""
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).hexdigest() + str(array.shape)


@st.cache_data(max_entries=64, show_spinner=False)
def projection(_x: np.ndarray, key: str, method: str, params: ProjectionParams, seed: int) -> np.ndarray:
    """project(_x, ...) computed once per embeddings (key = digest(_x)), method, parameters and seed."""
    return project(_x, method, params, seed)


@st.cache_data(max_entries=16, show_spinner="Computing the learner's comparisons…")
def matrices(ref: LearnerRef, choice: DataChoice, spec: EpisodeSpec, fallback: str, stamp: float) -> EpisodeMatrices:
    return episode_matrices(analysed_learner(ref, choice, fallback)[0], episode(choice, spec))


@st.cache_data(max_entries=16, show_spinner=False)
def split_evaluation(
    ref: LearnerRef, choice: DataChoice, split: str, shape: EpisodeShape, episodes: int, fallback: str, stamp: float
) -> EvalResult:
    """evaluate() on `episodes` seeded episodes of the split: the confusion over many episodes."""
    return evaluate(analysed_learner(ref, choice, fallback)[0], class_pool(choice, split), shape, episodes, seed=0)


# --- the inner loop of optimization-based learners (MAML family) ---------------------------------


def adapts(learner_now: MetaLearner) -> bool:
    """True for learners that adapt weights per task in an inner loop (MAML, FOMAML, Reptile, ANIL, ...)."""
    return isinstance(learner_now, FastWeightLearner)


@torch.no_grad()
def _points_at(learner_now: FastWeightLearner, task: Task, weights: dict, ep: Episode) -> PointSet:
    """The episode's support and query features under the fast weights `weights`, and the predictions they give.

    The features are what the head reads: the backbone at the adapted weights where the backbone adapts
    (MAML), the fixed meta-learned features where only the head does (ANIL)."""
    backbone = {k: v for k, v in weights.items() if k not in HEAD_KEYS}

    def features(x: torch.Tensor) -> torch.Tensor:  # support and query apart: BatchNorm sees each batch as in training
        return functional_call(learner_now.backbone, backbone, (x,)) if backbone else learner_now.backbone(x)

    s_z, q_z = features(ep.support_x).cpu(), features(ep.query_x).cpu()
    ids = torch.tensor(ep.class_ids)
    n_s, n_q = len(ep.support_y), len(ep.query_y)
    predicted = ids[task.logits(weights, task.query).argmax(1).cpu()]
    return PointSet(
        z=torch.cat([s_z, q_z]).numpy(),
        class_ids=ids[torch.cat([ep.support_y, ep.query_y]).cpu()].numpy(),
        image_idx=torch.cat([ep.support_idx, ep.query_idx]).numpy(),
        group=np.array(["support"] * n_s + ["query"] * n_q),
        predicted=np.concatenate([np.full(n_s, NO_PREDICTION), predicted.numpy()]),
        prototypes=prototypes(s_z, ep.support_y.cpu(), ep.n_way).numpy(),
        prototype_class_ids=ids.numpy(),
    )


@st.cache_data(max_entries=16, show_spinner="Adapting to the episode…")
def adaptation(
    ref: LearnerRef, choice: DataChoice, spec: EpisodeSpec, fallback: str, stamp: float
) -> tuple[list[dict[str, float]], PointSet, PointSet]:
    """(loss and accuracy of query and support after each inner step, the space before adapting, after adapting)."""
    learner_now = analysed_learner(ref, choice, fallback)[0]
    if not adapts(learner_now):
        raise ValueError(f"{type(learner_now).__name__} has no inner loop")
    ep = episode(choice, spec)
    trace = learner_now.adapt_trace(ep.support_x, ep.support_y, ep.query_x, ep.query_y, ep.n_way)
    task = learner_now.task(ep.support_x, ep.query_x, ep.n_way)
    steps = list(learner_now.adapt(task, ep.support_y, track=False))
    return trace, _points_at(learner_now, task, steps[0], ep), _points_at(learner_now, task, steps[-1], ep)


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
        return projection(x, digest(x), method, params, seed)
    job = projection_jobs().job(x, method, params, seed)
    return job.future.result() if job.future.done() else None
