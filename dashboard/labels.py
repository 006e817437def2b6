"""What the dashboard calls each setting: form labels, and the hint an error message gets.

Engine messages are worded for any caller and name the setting concerned (core.errors.UserError.setting);
the dashboard adds the label the user sees here, as the command line adds its flag.
"""

from __future__ import annotations

LABELS = {
    "dataset": "Dataset",
    "data_dir": "Data folder",
    "image_size": "Image size",
    "method": "Learner",
    "backbone": "Backbone",
    "distance": "Distance",
    "margin": "Loss margin",
    "fce": "Full-context embeddings",
    "relation_hidden": "Relation module hidden units",
    "inner_steps": "Inner steps",
    "inner_lr": "Inner learning rate",
    "first_order": "First order (drop second derivatives)",
    "hidden": "Hidden size",
    "n_way": "N (classes per episode)",
    "k_shot": "K (support images per class)",
    "q_query": "Q (queries per class)",
    "episodes": "Training episodes",
    "meta_batch": "Episodes per step (meta-batch)",
    "rotations": "Rotated copies as extra classes",
    "aug_rotation": "Augment: rotation (degrees)",
    "aug_shear": "Augment: shear (degrees)",
    "aug_scale": "Augment: scale (relative)",
    "aug_translate": "Augment: shift (share of the side)",
    "aug_elastic": "Augment: elastic distortion (share of the side)",
    "aug_thickness": "Augment: stroke thickness (0 to 1)",
    "within_alphabet": "Episodes within one alphabet (share)",
    "split_drawers": "Support and queries by different drawers",
    "optimizer": "Optimizer",
    "lr": "Learning rate",
    "seed": "Seed",
    "device": "Device",
    "recipe": "Recipe",
}


def label(setting: str) -> str:
    return LABELS.get(setting, setting.replace("_", " "))
