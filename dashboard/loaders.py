"""Cached access to the engine's heavy objects, shared by all pages.

st.cache_resource holds only read-only objects: datasets and learners loaded for inference
(in eval mode). A model being trained lives in its TrainingRun, never here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from core.analysis.distances import EpisodeMatrices, episode_matrices, learner_metric
from core.analysis.embeddings import PointSet, embed_episode, embed_sample, sample_splits
from core.analysis.projection import ProjectionParams, project
from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.data import ClassSplit, ImageSet, load_dataset, split_classes
from core.episodes import ClassPool, Episode, EpisodeSpec, draw_spec
from core.evaluation import EvalResult, evaluate
from core.experiment import Experiment, load_learner
from core.learners import MetaLearner
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
