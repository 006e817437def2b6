"""The `lake` recipe: ProtoNet trained for Lake's one-shot protocol in at most 15 minutes of a 2-core CPU.

Flat config values (LearnerConfig and TrainConfig field names; n_way / k_shot / q_query make the training
episode shape) for core/recipes.py to turn into a RunConfig, flags given beside --recipe overriding them.
Found by measurement on the minimal split's 5 training alphabets, choices read off the validation alphabet
(scripts/lake_ablation.py, raw results in docs/figures/lake-ablation.json):

- augmentation (random affine + elastic distortion, on tensors): the largest single gain once training is
  long enough (2000 episodes: Lake test error 22.4% against TBD without; at 600 episodes it gave nothing);
- Conv-4 whose last block max-pools its whole map (conv4-global): a little better than the plain one at 28 px;
- 28 px: 56 px with Conv-4's flattened 3x3 map was much worse (44% at the short budget) and costs 4x;
- 30-way training episodes and as many of them as the budget allows (the error still falls at the end).
Measured and left out: within-alphabet episodes, support and queries by split drawers, stroke thickness.
"""

from __future__ import annotations

LAKE_RECIPE: dict[str, object] = {
    "method": "protonet",
    "backbone": "conv4-global",
    "dataset": "omniglot",
    "image_size": 28,
    "n_way": 30,
    "k_shot": 1,
    "q_query": 5,
    "episodes": 4000,
    "lr": 0.002,
    "schedule": "cosine",
    "rotations": True,
    "aug_rotation": 10.0,
    "aug_shear": 10.0,
    "aug_scale": 0.1,
    "aug_translate": 0.05,
    "aug_elastic": 0.03,
    "val_every": 0,
}

# How the recipe is evaluated: `python -m core eval --run RUN --protocol lake` plus these options. The inductive
# figure (each query on its own) is the one comparable with people and the published models; `--balance` also
# uses that each of the 20 characters has exactly one query in Lake's runs (transductive), reported beside it.
LAKE_EVAL: dict[str, object] = {"protocol": "lake", "episodes": 1000, "tta": 16}
LAKE_EVAL_TRANSDUCTIVE: dict[str, object] = {**LAKE_EVAL, "balance": True}
