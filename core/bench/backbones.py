"""`bench --dataset NAME`: training speed of ProtoNet on both backbones at the dataset's own size and colour.

The main benchmark compares pipelines on Conv-4; on a named benchmark (84-pixel colour for the
ImageNet-like ones) a user also wants to know what ResNet-12 costs there. Same episodes, 5w1s15q.
"""

from __future__ import annotations

import torch

from core.bench.variants import Variant, variant_speed
from core.config import EpisodeShape, LearnerConfig
from core.data import ImageSet, split_classes
from core.device import resolve_device
from core.episodes import ClassPool
from core.learners import make_learner

BACKBONES = ("conv4", "resnet12")


def backbone_speeds(image_set: ImageSet, shape: EpisodeShape, steps: int, seed: int = 0) -> dict[str, float]:
    """{'train_eps_conv4': ..., 'train_eps_resnet12': ..., and each one's last-window loss}: best of 2 windows of `steps` steps."""
    device = resolve_device("auto")
    pool = ClassPool(image_set, split_classes(image_set, seed).classes("train"), device=device)
    c, size, _ = image_set.image_shape
    out: dict[str, float] = {}
    for backbone in BACKBONES:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            learner = make_learner(LearnerConfig(method="protonet", backbone=backbone), c, size).to(device)
        speed = variant_speed(learner, pool, shape, Variant(backbone, precision="auto"), steps, windows=2, seed=seed)
        out[f"train_eps_{backbone}"] = speed["eps"]
        out[f"train_loss_{backbone}"] = speed["loss_last_window"]
    return out
