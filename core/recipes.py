"""Named recipes: frozen sets of flat config values, applied before the values a user gives.

`python -m core train --recipe protonet` (or the Train page's recipe box) starts from a recipe; any flag
given beside it overrides that one value. The recipe's name is saved in the run's config.
The figures each recipe reached are in the README ("Figures").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from core.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    """A name, what it is for, and the flat values it sets (keys as RunConfig.from_flat takes them)."""

    name: str
    summary: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))  # frozen all the way down


_META_5W1S = {"n_way": 5, "k_shot": 1, "q_query": 15, "meta_batch": 4, "lr": 0.002}
_METRIC_20W = {"n_way": 20, "k_shot": 1, "q_query": 5, "episodes": 800}
# lake: chosen on the validation alphabet (docs/lake.md has the ablation); 42 px images (with the global-pool encoder:
# finer strokes than 28 px, 2.25x the cost) for 2,500 episodes take 12 of the 15 minutes allowed on a quiet 2-core CPU,
# and beat 5,000 episodes at 28 px; the rest is margin for a busier one; no validation, to spend the minutes on training
LAKE_AUGMENT = {"aug_rotation": 10.0, "aug_shear": 10.0, "aug_scale": 0.1, "aug_translate": 0.05, "aug_elastic": 0.03}
LAKE_EPISODES = 2500
LAKE_IMAGE_SIZE = 42

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("protonet", "ProtoNet as in the papers: 30-way training episodes, rotations, cosine schedule (Omniglot 5w1s 92%)",
               {"method": "protonet", "n_way": 30, "k_shot": 1, "q_query": 5, "episodes": 1500, "lr": 0.002}),
        Recipe("matching", "Matching Networks, 20-way training episodes", {"method": "matching", **_METRIC_20W}),
        Recipe("relation", "Relation Networks, 20-way training episodes", {"method": "relation", **_METRIC_20W}),
        Recipe("siamese", "Siamese network with contrastive loss, 20-way training episodes", {"method": "siamese", **_METRIC_20W}),
        Recipe("triplet", "Triplet network, margin 0.5, 20-way training episodes", {"method": "triplet", "margin": 0.5, **_METRIC_20W}),
        Recipe("fomaml", "First-order MAML, 5-way 1-shot, 4 episodes per step", {"method": "fomaml", "episodes": 400, **_META_5W1S}),
        Recipe("maml", "Second-order MAML, 5-way 1-shot, 4 episodes per step", {"method": "maml", "episodes": 150, **_META_5W1S}),
        Recipe("anil", "ANIL (only the head adapts), 5-way 1-shot", {"method": "anil", "episodes": 400, **_META_5W1S}),
        Recipe("reptile", "Reptile, trained 5-shot with inner lr 0.1",
               {"method": "reptile", "episodes": 400, **_META_5W1S, "k_shot": 5, "q_query": 5, "inner_lr": 0.1}),
        Recipe("learned_optimizer", "A coordinate-wise LSTM optimizer in the inner loop",
               {"method": "learned_optimizer", "episodes": 300, **_META_5W1S}),
        Recipe("blackbox", "The model-based learner reading the support set as a sequence",
               {"method": "blackbox", "n_way": 5, "k_shot": 1, "q_query": 15, "lr": 0.001, "episodes": 2000}),
        Recipe("lake",
               "ProtoNet for Lake's one-shot test (Omniglot): 42 px images, 30-way episodes, global-pool Conv-4, "
               "affine + elastic augmentation",
               {"method": "protonet", "backbone": "conv4-global", "image_size": LAKE_IMAGE_SIZE, "n_way": 30, "k_shot": 1, "q_query": 5,
                "episodes": LAKE_EPISODES, "lr": 0.002, "val_every": 0, **LAKE_AUGMENT}),
    )
}  # fmt: skip


def recipe(name: str) -> Recipe:
    """The recipe called `name`; ConfigError listing the names otherwise."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe '{name}'; choose one of: {', '.join(RECIPES)}", "recipe")
    return RECIPES[name]


def with_recipe(name: str | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """Flat values: the recipe's (when named), then `given` over them, and the recipe's name."""
    if not name:
        return dict(given)
    return {**recipe(name).values, **given, "recipe": name}
