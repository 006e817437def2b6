"""Frozen, validated configuration: what a run is, saved with it as JSON.

A leaf: it checks values (ranges, known words) and imports nothing of the engine. Names that a
registry holds (learners, backbones, datasets) are checked by that registry where it builds the thing
(core.experiment.preflight checks them all before a run starts).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from core.errors import ConfigError

__all__ = ["ConfigError", "EpisodeShape", "LearnerConfig", "RunConfig", "TrainConfig", "check_fields", "check_int64"]

# upper bounds: past them a value is a typo or an attack, and would hang a run or exhaust memory before any check
MAX_SEED = 2**62 - 1  # seeds are offset (+1, +2, ...) for derived streams; numpy and torch take up to 64 bits
MAX_STEPS = 10_000_000  # optimizer steps, episodes of an evaluation, steps between events
MAX_EPISODE_SIDE = 10_000  # classes per episode, images per class
MAX_HIDDEN = 16_384  # hidden units (core.capacity also refuses a learner that would not fit in memory)
MAX_META_BATCH = 1024
MAX_LR = 10.0
STEP_COUNTS = {
    "episodes": "training steps",
    "val_every": "steps between validations",
    "val_episodes": "validation episodes",
    "checkpoint_every": "steps between checkpoints",
    "log_every": "steps between metric records",
}


def _check(condition: bool, setting: str | None, message: str) -> None:
    if not condition:
        raise ConfigError(message, setting)


# a field's declared type -> how a wrong value is described
_KINDS = {"int": "a whole number", "float": "a finite number", "bool": "true or false", "str": "text", "str | None": "text or nothing"}
_INT64 = (-(2**63), 2**63 - 1)


def _fits(kind: str, value: object) -> bool:
    if kind == "int":  # any size here: the ranges say what is allowed, check_int64 catches the rest
        return type(value) is int
    if kind == "float":  # a whole number too: JSON writes 1.0 as 1 in some tools
        return type(value) in (int, float) and abs(value) < 1e308 and math.isfinite(value)
    if kind == "bool":
        return type(value) is bool
    if kind in ("str", "str | None"):
        return (value is None and kind == "str | None") or (type(value) is str and "\x00" not in value)
    return True  # a nested config: checked by its own class


def check_fields(config: object) -> None:
    """ConfigError unless every field of the dataclass `config` holds its declared kind: whole numbers within
    64 bits (not booleans), finite numbers, booleans, text without NUL. Values read back from files or links go
    through here, so a wrong type is refused where it enters rather than failing (or passing) far from it."""
    for f in fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        if f.type in _KINDS and not _fits(f.type, value):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise ConfigError(f"{f.name.replace('_', ' ')} must be {_KINDS[f.type]} (got {shown})", f.name)
        if f.type == "float" and type(value) is int:
            object.__setattr__(config, f.name, float(value))  # one canonical type in the saved config


def check_int64(config: object) -> None:
    """ConfigError unless every whole-number field of `config` fits in 64 bits (after the fields' own range checks)."""
    for f in fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        _check(f.type != "int" or _INT64[0] <= value <= _INT64[1], f.name, f"{f.name.replace('_', ' ')} {value} does not fit in 64 bits")


def _at_most(value: float, high: float, setting: str, what: str) -> None:
    show = lambda v: f"{v:,}" if isinstance(v, int) else f"{v:g}"
    _check(value <= high, setting, f"use at most {show(high)} {what} (got {show(value)})")


def is_device_name(name: str) -> bool:
    """auto, cpu, cuda, or cuda:N with N a GPU number (whether that GPU exists is core.device's check)."""
    kind, colon, index = name.partition(":")
    if kind in ("auto", "cpu"):
        return not colon
    return kind == "cuda" and (not colon or (index.isascii() and index.isdigit() and len(index) <= 4))


@dataclass(frozen=True)
class EpisodeShape:
    """N-way K-shot episodes with Q queries per class."""

    n_way: int = 5
    k_shot: int = 1
    q_query: int = 15

    def __post_init__(self) -> None:
        check_fields(self)
        _check(self.n_way >= 2, "n_way", f"an episode needs at least 2 classes (got {self.n_way})")
        _check(self.k_shot >= 1, "k_shot", f"each class needs at least 1 support image (got {self.k_shot})")
        _check(self.q_query >= 1, "q_query", f"each class needs at least 1 query image (got {self.q_query})")
        _at_most(self.n_way, MAX_EPISODE_SIDE, "n_way", "classes per episode")
        _at_most(self.k_shot, MAX_EPISODE_SIDE, "k_shot", "support images per class")
        _at_most(self.q_query, MAX_EPISODE_SIDE, "q_query", "query images per class")
        check_int64(self)

    @property
    def per_class(self) -> int:
        return self.k_shot + self.q_query


@dataclass(frozen=True)
class LearnerConfig:
    """Which meta-learner and how it is built. Each learner reads the fields it uses (its `settings`)."""

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
        check_fields(self)
        _check(self.distance in ("euclidean", "cosine"), "distance", f"unknown distance '{self.distance}'; use euclidean or cosine")
        _check(self.margin > 0, "margin", f"the loss margin must be positive (got {self.margin})")
        _check(self.relation_hidden >= 1, "relation_hidden", "the relation module needs at least 1 hidden unit")
        _check(0 <= self.inner_steps <= 100, "inner_steps", f"use 0 to 100 inner steps (got {self.inner_steps})")
        _check(self.inner_lr > 0, "inner_lr", f"the inner learning rate must be positive (got {self.inner_lr})")
        _check(self.hidden >= 1, "hidden", "the hidden size must be at least 1")
        _at_most(self.inner_lr, MAX_LR, "inner_lr", "as the inner learning rate")
        _at_most(self.hidden, MAX_HIDDEN, "hidden", "hidden units")
        _at_most(self.relation_hidden, MAX_HIDDEN, "relation_hidden", "hidden units in the relation module")
        _at_most(self.margin, 1e6, "margin", "as the loss margin")
        check_int64(self)


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
    # auto: a meta-batch goes through one forward pass on a GPU (launch-bound: fewer, larger kernels), one
    # episode at a time on the CPU (measured faster there for ProtoNet and ANIL; FOMAML gained 1.2x with on) | on | off
    batch_episodes: str = "auto"
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
    precision: str = "auto"  # auto (bf16 autocast where the hardware computes it, else fp32) | fp32 | bf16
    compile: str = "off"  # off | default | reduce-overhead: torch.compile the training loss (CUDA graphs on a GPU)
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
        check_fields(self)
        _check(8 <= self.image_size <= 256, "image_size", f"use images of 8 to 256 pixels (got {self.image_size})")
        _check(self.episodes >= 1, "episodes", f"train for at least 1 episode (got {self.episodes})")
        _check(self.meta_batch >= 1, "meta_batch", f"use at least 1 episode per step (got {self.meta_batch})")
        _check(self.optimizer in ("adam", "sgd"), "optimizer", f"unknown optimizer '{self.optimizer}'; use adam or sgd")
        _check(0 < self.lr <= 10, "lr", f"the learning rate must be above 0 and at most 10 (got {self.lr})")
        _check(self.weight_decay >= 0, "weight_decay", "the weight decay must not be negative")
        _check(
            self.schedule in ("cosine", "step", "constant"), "schedule", f"unknown schedule '{self.schedule}'; use cosine, step or constant"
        )
        _check(self.val_every >= 0, "val_every", "validate every 0 (never) or more steps")
        _check(self.val_episodes >= 1, "val_episodes", "validate on at least 1 episode")
        _check(self.checkpoint_every >= 1, "checkpoint_every", "save a checkpoint every 1 or more steps")
        _check(self.log_every >= 1, "log_every", "record metrics every 1 or more steps")
        _check(self.precision in ("auto", "fp32", "bf16"), "precision", f"unknown precision '{self.precision}'; use auto, fp32 or bf16")
        _check(is_device_name(self.device), "device", f"unknown device '{self.device}'; use auto, cpu, cuda or cuda:N (N a GPU number)")
        for name in ("seed", "split_seed"):
            _check(0 <= getattr(self, name) <= MAX_SEED, name, f"use a seed from 0 to {MAX_SEED} (got {getattr(self, name)})")
        for name, what in STEP_COUNTS.items():
            _at_most(getattr(self, name), MAX_STEPS, name, what)
        _at_most(self.meta_batch, MAX_META_BATCH, "meta_batch", "episodes per step")
        _at_most(self.weight_decay, MAX_LR, "weight_decay", "as the weight decay")
        for name in ("train_shape", "eval_shape"):
            _check(isinstance(getattr(self, name), EpisodeShape), name, f"{name.replace('_', ' ')} must be an episode shape")
        check_int64(self)

        _check(
            self.batch_episodes in ("auto", "on", "off"),
            "batch_episodes",
            f"unknown batch_episodes '{self.batch_episodes}'; use auto, on or off",
        )
        modes = ("off", "default", "reduce-overhead")
        _check(self.compile in modes, "compile", f"unknown compile mode '{self.compile}'; use off, default or reduce-overhead")
        _check(0 <= self.within_alphabet <= 1, "within_alphabet", f"a share of episodes: use 0 to 1 (got {self.within_alphabet})")
        _check(
            not self.split_drawers or self.train_shape.k_shot == 1,
            "split_drawers",
            "split drawers take each support image from one drawer: use 1 support image per class",
        )
        for name, top in AUGMENT_LIMITS.items():
            value = getattr(self, f"aug_{name}")
            _check(0 <= value <= top, f"aug_{name}", f"augmentation {name}: use 0 (off) to {top} (got {value})")


# largest strength of each augmentation (TrainConfig.aug_*): rotation, shear in degrees, the others relative
AUGMENT_LIMITS = {"rotation": 180, "shear": 60, "scale": 0.5, "translate": 0.5, "elastic": 0.25, "thickness": 1}


# flat names of the episode shapes: training episodes, and validation episodes (their K is the training K)
SHAPE_KEYS = ("n_way", "k_shot", "q_query")
EVAL_KEYS = {"eval_n_way": 5, "eval_q_query": 15}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; saved as config.json beside its metrics and checkpoints.

    recipe: the named recipe (core.recipes) the values started from, '' when none.
    """

    learner: LearnerConfig = field(default_factory=LearnerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    recipe: str = ""

    def __post_init__(self) -> None:
        check_fields(self)
        _check(isinstance(self.learner, LearnerConfig) and isinstance(self.train, TrainConfig), None, "not a MetaScope run config")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> RunConfig:
        """The one way flat settings (command-line flags, the dashboard's form, a recipe) become a config.

        Keys are LearnerConfig / TrainConfig field names, plus n_way / k_shot / q_query for training episodes
        and eval_n_way / eval_q_query for validation episodes (default 5-way, 15 queries, the training K);
        a missing key takes its default, an unknown one is a ConfigError.
        """
        _check(isinstance(values, Mapping), None, "settings must be a mapping of names to values")
        learner_keys, train_keys = _names(LearnerConfig), _names(TrainConfig) - {"train_shape", "eval_shape"}
        unknown = set(values) - learner_keys - train_keys - set(SHAPE_KEYS) - set(EVAL_KEYS) - {"recipe"}
        _check(not unknown, None, f"unknown settings: {', '.join(sorted(unknown))}")
        default = TrainConfig().train_shape
        shape = EpisodeShape(*(values.get(k, getattr(default, k)) for k in SHAPE_KEYS))
        try:
            evaluation = EpisodeShape(values.get("eval_n_way", 5), shape.k_shot, values.get("eval_q_query", 15))
        except ConfigError as exc:  # name the validation setting, not the training one
            raise ConfigError(str(exc), {"n_way": "eval_n_way", "q_query": "eval_q_query"}.get(exc.setting or "", exc.setting)) from None
        learner = LearnerConfig(**{k: v for k, v in values.items() if k in learner_keys})
        train = TrainConfig(train_shape=shape, eval_shape=evaluation, **{k: v for k, v in values.items() if k in train_keys})
        return cls(learner, train, str(values.get("recipe") or ""))

    def to_flat(self) -> dict[str, Any]:
        """The inverse of from_flat: every setting under its flat name."""
        train = {k: v for k, v in dataclasses.asdict(self.train).items() if k not in ("train_shape", "eval_shape")}
        shape, evaluation = self.train.train_shape, self.train.eval_shape
        flat = {**dataclasses.asdict(self.learner), **train, **{k: getattr(shape, k) for k in SHAPE_KEYS}}
        return {**flat, "eval_n_way": evaluation.n_way, "eval_q_query": evaluation.q_query, "recipe": self.recipe}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Rebuild and re-validate; unknown keys are an error so a foreign file is caught."""
        try:
            has_train = isinstance(data, dict) and isinstance(data.get("train"), dict)
            _check(has_train, None, "not a MetaScope run config: it has no 'train' settings")
            train = dict(data["train"])
            for key in ("train_shape", "eval_shape"):
                if key in train:
                    train[key] = _build(EpisodeShape, train[key])
            recipe = data.get("recipe", "")
            _check(isinstance(recipe, str), "recipe", f"recipe must be text (got {recipe!r:.40})")
            return cls(learner=_build(LearnerConfig, data["learner"]), train=_build(TrainConfig, train), recipe=recipe)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not a MetaScope run config: {exc}") from exc


def _names(kind: type) -> set[str]:
    return {f.name for f in fields(kind)}


def _build(kind: type, values: dict[str, Any]) -> Any:
    _check(isinstance(values, dict), None, f"{kind.__name__} settings must be a JSON object (got {type(values).__name__})")
    unknown = set(values) - _names(kind)
    _check(not unknown, None, f"unknown {kind.__name__} settings: {', '.join(sorted(unknown))}")
    return kind(**values)
