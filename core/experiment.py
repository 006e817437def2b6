"""Turning a RunConfig into data, pools and a learner; loading a saved run back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.capacity import check_image_size, check_memory
from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.data import ClassSplit, ImageSet, load_dataset, split_classes
from core.data.cache import NO_HOOKS, Hooks
from core.device import resolve_device
from core.episodes import ClassPool, check_shape
from core.hard_episodes import training_sampler
from core.learners import MetaLearner, learner_class, make_learner
from core.models.backbones import backbone_class
from core.store import Checkpoint, CheckpointError, RunDir, read_checkpoint


@dataclass
class Experiment:
    """The data side of a run: the dataset, its class split and per-split pools on one device."""

    image_set: ImageSet
    split: ClassSplit
    device: torch.device
    _pools: dict[tuple[str, bool], ClassPool] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, train: TrainConfig, image_set: ImageSet | None = None, hooks: Hooks = NO_HOOKS) -> Experiment:
        """The data `train` names on its device; `image_set` when the caller already has it loaded.

        hooks: progress of a first decode and notices from the dataset cache (the CLI draws bars)."""
        image_set = image_set or load_dataset(train.dataset, train.data_dir, train.image_size, hooks=hooks)
        return cls(image_set, split_classes(image_set, train.split_seed), resolve_device(train.device))

    def pool(self, split: str, rotations: bool = False) -> ClassPool:
        """The classes of `split` as a pool (built once per split and rotation setting)."""
        key = (split, rotations)
        if key not in self._pools:
            self._pools[key] = ClassPool(self.image_set, self.split.classes(split), rotations, self.device)
        return self._pools[key]

    def new_learner(self, learner: LearnerConfig, seed: int | None = None) -> MetaLearner:
        """A learner for this data's images on this device (initial weights from `seed`: see make_learner)."""
        c, h, _ = self.image_set.image_shape
        return make_learner(learner, c, h, seed).to(self.device)

    def check(self, split: str, shape: EpisodeShape, rotations: bool = False) -> None:
        """EpisodeError unless `shape` can be drawn from `split` (rotations: 4x the classes), without building a pool."""
        classes = list(self.split.classes(split))
        counts = self.image_set.class_counts()[classes] if classes else None
        check_shape(shape, len(classes) * (4 if rotations else 1), int(counts.min()) if counts is not None else 0)


def preflight(
    config: RunConfig, image_set: ImageSet | None = None, init_from: str | Path | None = None, hooks: Hooks = NO_HOOKS
) -> Experiment:
    """Everything that can be checked before a run folder exists, for the CLI and the dashboard alike:
    the learner and backbone names, the data (loaded, or `image_set` when given), the device, that
    the training episodes fit the train split (its alphabets and drawers too, where the episodes need them), that
    the images are large enough for the backbone and the learner small enough for the memory free, and that
    `init_from` (a checkpoint to start from) fits it.
    -> the Experiment to train with."""
    learner_class(config.learner.method)
    backbone_class(config.learner.backbone)
    experiment = Experiment.from_config(config.train, image_set, hooks)
    experiment.check("train", config.train.train_shape, config.train.rotations)
    if config.train.within_alphabet or config.train.split_drawers:  # these need alphabets / drawers: the sampler checks
        training_sampler(experiment.pool("train", config.train.rotations), config.train)
    check_image_size(config.learner, experiment.image_set.image_shape)
    check_memory(config.learner, experiment.image_set.image_shape, experiment.device)
    if init_from is not None:
        warm_start(config.learner, experiment.image_set.image_shape, init_from)
    return experiment


def warm_start(learner: LearnerConfig, image_shape: tuple[int, int, int], init_from: str | Path) -> dict[str, torch.Tensor]:
    """The weights of the checkpoint `init_from` (a .safetensors file in a run's checkpoints folder) for a new
    `learner` on images of `image_shape`; CheckpointError (setting init_from) when it holds another kind of learner."""
    path = Path(init_from)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path} is not a checkpoint: give a .safetensors file from a run's checkpoints folder", "init_from")
    try:
        loaded, config, _ = load_learner(path.parent.parent, path)
    except CheckpointError as exc:
        raise CheckpointError(str(exc), "init_from") from None
    c, h, w = image_shape
    side = loaded.image_size
    theirs = f"a {config.learner.method} / {config.learner.backbone} learner for {loaded.in_channels}x{side}x{side} images"
    ours = f"a {learner.method} / {learner.backbone} learner for {c}x{h}x{w} images"
    weights = loaded.state_dict()
    with torch.device("meta"):  # the shapes and types of the new learner's weights, nothing allocated
        expected = {k: (v.shape, v.dtype) for k, v in make_learner(learner, c, h).state_dict().items()}
    if {k: (v.shape, v.dtype) for k, v in weights.items()} != expected:
        raise CheckpointError(f"{path.name} holds {theirs}; this run trains {ours}: start from a checkpoint of the same kind", "init_from")
    return weights


def checkpoint_metadata(config: RunConfig, learner: MetaLearner) -> dict[str, str]:
    """What a checkpoint records so it can be checked against a learner before loading."""
    return {"method": config.learner.method, "input_shape": f"{learner.in_channels},{learner.image_size},{learner.image_size}"}


def load_learner(
    run: str | Path | RunDir, checkpoint: int | str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[MetaLearner, RunConfig, Checkpoint]:
    """Rebuild a run's learner from a checkpoint (by step, by path, or the latest when None).

    Raises CheckpointError, naming the file and the mismatch, for a damaged, foreign or
    ill-fitting checkpoint; nothing on disk is changed.
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    config = run.config()
    chosen = _choose_checkpoint(run, checkpoint)
    tensors, meta = read_checkpoint(chosen.path)
    if meta.get("method") != config.learner.method:
        raise CheckpointError(f"{chosen.path.name} holds a '{meta.get('method')}' learner but the run is '{config.learner.method}'")
    c, h = _input_shape(chosen.path.name, meta, run.info().get("input_shape"))
    learner = make_learner(config.learner, c, h)
    missing, unexpected = _compare_keys(learner, tensors)
    if missing or unexpected:
        raise CheckpointError(
            f"{chosen.path.name} does not fit a {config.learner.method} / {config.learner.backbone} learner: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    foreign = [k for k, v in learner.state_dict().items() if tensors[k].dtype != v.dtype]
    if foreign:
        key = foreign[0]
        raise CheckpointError(
            f"{chosen.path.name} stores {key} as {str(tensors[key].dtype).removeprefix('torch.')} where MetaScope writes "
            f"{str(learner.state_dict()[key].dtype).removeprefix('torch.')}; it was converted elsewhere: pick another checkpoint or retrain"
        )
    try:
        learner.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:  # shape mismatch
        raise CheckpointError(f"{chosen.path.name} does not fit the learner: {str(exc).splitlines()[-1].strip()}") from exc
    return learner.to(device).eval(), config, chosen


def _input_shape(name: str, meta: dict[str, str], recorded: list[int] | None) -> tuple[int, int]:
    """(channels, side) the checkpoint records, checked against what its run trained on (run.json's input shape, else
    the sizes a config allows): never a size the file alone decides, such as one predict would resize images to."""
    try:
        c, h, w = (int(v) for v in meta["input_shape"].split(","))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{name} does not record its input shape; it was not written by MetaScope") from exc
    if c not in (1, 3) or h != w or not 8 <= h <= 256:
        raise CheckpointError(f"{name} records {c}x{h}x{w} input images, not 1 or 3 channels of 8 to 256 pixels a side; it is damaged")
    if recorded and [c, h, w] != recorded:
        shape = "x".join(map(str, recorded))
        raise CheckpointError(f"{name} records {c}x{h}x{w} input images, not the {shape} images of its run; it belongs to another run")
    return c, h


def _choose_checkpoint(run: RunDir, checkpoint: int | str | Path | None) -> Checkpoint:
    if isinstance(checkpoint, (str, Path)) and Path(checkpoint).suffix == ".safetensors":
        return Checkpoint(Path(checkpoint), -1)
    saved = run.checkpoints()
    if not saved:
        raise CheckpointError(f"run {run.id} has no checkpoints yet; train it first (or wait for the first checkpoint)")
    if checkpoint is None:
        return saved[-1]
    if isinstance(checkpoint, Path) or (isinstance(checkpoint, str) and not checkpoint.strip().isdigit()):
        raise CheckpointError(f"'{checkpoint}' is neither a checkpoint step nor a .safetensors file")
    step = int(checkpoint)
    for found in saved:
        if found.step == step:
            return found
    raise CheckpointError(f"run {run.id} has no checkpoint at step {step}; saved steps: {[c.step for c in saved]}")


def _compare_keys(learner: MetaLearner, tensors: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    expected = set(learner.state_dict())
    return sorted(expected - set(tensors)), sorted(set(tensors) - expected)
