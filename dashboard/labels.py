"""What the dashboard calls each setting: form labels, and the hint an error message gets.

Engine messages are worded for any caller and name the setting concerned (core.errors.UserError.setting);
the dashboard adds the label the user sees here, as the command line adds its flag.
"""

from __future__ import annotations

from dashboard.i18n import N_, tr

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


FAMILIES = {"metric": N_("metric"), "optimization": N_("optimization"), "model": N_("model-based"), "baseline": N_("baseline")}
SPLITS = {"train": N_("train"), "val": N_("val"), "test": N_("test")}
METRICS = {"euclidean": N_("euclidean"), "cosine": N_("cosine")}  # tr() where shown
PARTS = (N_("support"), N_("query"), N_("correct"), N_("wrong"))  # an image's role and outcome, in charts and captions


STATUS = {
    "created": N_("not started"),
    "queued": N_("waiting in the queue"),
    "preparing": N_("starting"),
    "running": N_("training"),
    "paused": N_("paused"),
    "stopping": N_("stopping"),
    "finished": N_("finished"),
    "stopped": N_("stopped"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled"),
    "interrupted": N_("interrupted"),
}


def status_label(status: str) -> str:
    """A run's status in words of the session's language."""
    return tr(STATUS[status]) if status in STATUS else status


def label(setting: str) -> str:
    """The setting's label in the session's language (LABELS are all in dashboard/zh.py)."""
    return tr(LABELS[setting]) if setting in LABELS else setting.replace("_", " ")


def duration(seconds: float) -> str:
    """'45 s', '3 min', '1.5 h': a wait or a time left, as a person says it."""
    if seconds < 90:
        return tr("{n} s", n=max(int(round(seconds)), 1))
    if seconds < 5400:
        return tr("{n} min", n=int(round(seconds / 60)))
    return tr("{n} h", n=f"{seconds / 3600:.1f}")
