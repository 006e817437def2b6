"""Frozen, validated configuration: what a run is, saved with it as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any


class ConfigError(ValueError):
    """A setting is out of range; the message names it and what to change."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class EpisodeShape:
    """N-way K-shot episodes with Q queries per class."""

    n_way: int = 5
    k_shot: int = 1
    q_query: int = 15

    def __post_init__(self) -> None:
        _check(self.n_way >= 2, f"n_way={self.n_way}: an episode needs at least 2 classes")
        _check(self.k_shot >= 1, f"k_shot={self.k_shot}: each class needs at least 1 support image")
        _check(self.q_query >= 1, f"q_query={self.q_query}: each class needs at least 1 query image")

    @property
    def per_class(self) -> int:
        return self.k_shot + self.q_query


@dataclass(frozen=True)
class LearnerConfig:
    """Which meta-learner and how it is built. Each learner reads the fields it uses."""

    method: str = "protonet"
    backbone: str = "conv4"  # conv4 | resnet12
    distance: str = "euclidean"  # euclidean (squared) | cosine: the metric of metric-based learners
    margin: float = 1.0  # contrastive / triplet loss margin m
    fce: bool = False  # Matching Networks: full-context embeddings
    relation_hidden: int = 8  # Relation Networks: hidden units of the relation module
    inner_steps: int = 10  # MAML family: adaptation steps per task
    inner_lr: float = 0.05  # MAML family: inner-loop step size (fomaml 5w1s Omniglot: 89.3% with 10 x 0.05)
    first_order: bool = False  # MAML: drop second-order terms
    hidden: int = 128  # model-based / learned-optimizer hidden size

    def __post_init__(self) -> None:
        from core.learners.registry import LEARNERS
        from core.models.backbones import BACKBONES

        _check(self.method in LEARNERS, f"unknown method '{self.method}'; choose one of: {', '.join(sorted(LEARNERS))}")
        _check(self.backbone in BACKBONES, f"unknown backbone '{self.backbone}'; choose one of: {', '.join(BACKBONES)}")
        _check(self.distance in ("euclidean", "cosine"), f"unknown distance '{self.distance}'; use euclidean or cosine")
        _check(self.margin > 0, f"margin={self.margin}: the loss margin must be positive")
        _check(self.relation_hidden >= 1, "relation_hidden must be at least 1")
        _check(0 <= self.inner_steps <= 100, f"inner_steps={self.inner_steps}: use 0 to 100")
        _check(self.inner_lr > 0, f"inner_lr={self.inner_lr}: the inner learning rate must be positive")
        _check(self.hidden >= 1, "hidden must be at least 1")


@dataclass(frozen=True)
class TrainConfig:
    """How a learner is meta-trained and on what data."""

    dataset: str = "glyphs"
    data_dir: str | None = None
    image_size: int = 28
    episodes: int = 1000  # outer steps
    train_shape: EpisodeShape = field(default_factory=lambda: EpisodeShape(20, 1, 5))
    eval_shape: EpisodeShape = field(default_factory=lambda: EpisodeShape(5, 1, 15))  # validation episodes
    meta_batch: int = 1  # episodes averaged per optimizer step
    rotations: bool = True  # rotated copies as extra training classes (Omniglot practice)
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine | step | constant
    seed: int = 0
    split_seed: int = 0
    val_every: int = 100  # steps between validations (0: never)
    val_episodes: int = 100
    checkpoint_every: int = 100  # steps between checkpoints (the last step is always saved)
    log_every: int = 10  # steps between metric records (each record syncs the device)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 autocast on a GPU that has it, else fp32) | fp32 | bf16
    # Lake-like training episodes (core.hard_episodes) and augmentation (core.augment); 0 / False: off
    within_alphabet: float = 0.0  # share of training episodes whose classes all come from one alphabet (class group)
    split_drawers: bool = False  # every class's support by one drawer, the queries by others (k_shot 1; needs drawers)
    aug_rotation: float = 0.0  # degrees, +-
    aug_shear: float = 0.0  # degrees, +-
    aug_scale: float = 0.0  # relative size change, +-
    aug_translate: float = 0.0  # shift as a fraction of the side, +-
    aug_elastic: float = 0.0  # largest smooth random displacement, fraction of the side
    aug_thickness: float = 0.0  # largest blend toward strokes one pixel thicker or thinner, 0..1

    def __post_init__(self) -> None:
        from core.data.registry import DATASETS

        _check(self.dataset in DATASETS, f"unknown dataset '{self.dataset}'; choose one of: {', '.join(DATASETS)}")
        _check(8 <= self.image_size <= 256, f"image_size={self.image_size}: use 8 to 256 pixels")
        _check(self.episodes >= 1, f"episodes={self.episodes}: train for at least 1 episode")
        _check(self.meta_batch >= 1, f"meta_batch={self.meta_batch}: use at least 1 episode per step")
        _check(self.optimizer in ("adam", "sgd"), f"unknown optimizer '{self.optimizer}'; use adam or sgd")
        _check(0 < self.lr <= 10, f"lr={self.lr}: the learning rate must be in (0, 10]")
        _check(self.weight_decay >= 0, "weight_decay must be non-negative")
        _check(self.schedule in ("cosine", "step", "constant"), f"unknown schedule '{self.schedule}'; use cosine, step or constant")
        _check(self.val_every >= 0 and self.val_episodes >= 1, "val_every must be >= 0 and val_episodes >= 1")
        _check(self.checkpoint_every >= 1 and self.log_every >= 1, "checkpoint_every and log_every must be >= 1")
        _check(self.device in ("auto", "cpu") or self.device.startswith("cuda"), f"unknown device '{self.device}'; use auto, cpu or cuda")
        _check(self.precision in ("auto", "fp32", "bf16"), f"unknown precision '{self.precision}'; use auto, fp32 or bf16")
        _check(0 <= self.within_alphabet <= 1, f"within_alphabet={self.within_alphabet}: a share of episodes, use 0 to 1")
        _check(not self.split_drawers or self.train_shape.k_shot == 1, "split_drawers takes each support from one drawer: use k_shot 1")
        for name, top in (("rotation", 180), ("shear", 60), ("scale", 0.5), ("translate", 0.5), ("elastic", 0.25), ("thickness", 1)):
            value = getattr(self, f"aug_{name}")
            _check(0 <= value <= top, f"aug_{name}={value}: use 0 (off) to {top}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; saved as config.json beside its metrics and checkpoints."""

    learner: LearnerConfig = field(default_factory=LearnerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Rebuild and re-validate; unknown keys are an error so a foreign file is caught."""
        try:
            train = dict(data["train"])
            for key in ("train_shape", "eval_shape"):
                if key in train:
                    train[key] = _build(EpisodeShape, train[key])
            return cls(learner=_build(LearnerConfig, data["learner"]), train=_build(TrainConfig, train))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not a MetaScope run config: {exc}") from exc


def _build(kind: type, values: dict[str, Any]) -> Any:
    known = {f.name for f in fields(kind)}
    unknown = set(values) - known
    _check(not unknown, f"unknown {kind.__name__} settings: {', '.join(sorted(unknown))}")
    return kind(**values)
