"""The Train page's form: a learner, its own settings (as the learner declares them), the episodes, a recipe."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.config import AUGMENT_LIMITS, RunConfig
from core.learners import LEARNERS, learner_class
from core.models.backbones import BACKBONES
from core.recipes import RECIPES
from dashboard import state
from dashboard.inputs import keyed
from dashboard.labels import label

FIRST_TRY_EPISODES = 200  # a run long enough to see curves move, short enough to wait for
AUGMENTATION = tuple(f"aug_{name}" for name in AUGMENT_LIMITS)  # strengths of the training augmentation (core.augment)
SHARED = ("method", "backbone", "distance", "optimizer", "lr", "episodes", "n_way", "k_shot", "q_query", "meta_batch", "seed", "rotations",
          *AUGMENTATION)  # fmt: skip


def form_defaults() -> dict[str, Any]:
    """Starting values of the form: core's defaults (every learner setting), with a run length that suits a first try."""
    flat = RunConfig().to_flat()
    learner_settings = {s for cls in LEARNERS.values() for s in cls.settings}
    return {k: v for k, v in flat.items() if k in SHARED or k in learner_settings} | {"episodes": FIRST_TRY_EPISODES}


def extra_settings(method: str) -> tuple[str, ...]:
    """The settings of `method` beyond backbone and distance, as its class declares them; the meta-batch goes with an inner loop."""
    cls = learner_class(method)
    extras = tuple(s for s in cls.settings if s not in ("backbone", "distance"))
    return (*extras, "meta_batch") if cls.family == "optimization" else extras


def apply_recipe() -> None:
    """on_change of the recipe box: its values into the form's widgets (runs before they are drawn)."""
    name = st.session_state.get("tr_recipe")
    if name:
        for key, value in RECIPES[name].values.items():
            st.session_state[f"tr_{key}"] = value


def train_form(disabled: bool) -> dict[str, Any]:
    """The training settings as plain values (validated later by core), kept in state across page switches.

    Number inputs accept out-of-range values on purpose: core's ConfigError then says what to change.
    """
    d = {**form_defaults(), **state.train_form()}

    def widget(col: Any, name: str, off: bool = False, **kw: Any) -> Any:
        value = d[name]
        if isinstance(value, bool):
            return col.checkbox(label(name), key=keyed(f"tr_{name}", value), disabled=disabled or off)
        if "options" in kw:
            return col.selectbox(label(name), key=keyed(f"tr_{name}", value), disabled=disabled or off, **kw)
        step = kw.pop("step", 1 if isinstance(value, int) else 0.1)
        number = col.number_input(label(name), key=keyed(f"tr_{name}", value), disabled=disabled or off, step=step, **kw)
        return type(value)(number)

    recipes = [None, *RECIPES]
    st.selectbox("Start from a recipe", recipes, key=keyed("tr_recipe", d.get("recipe")), on_change=apply_recipe, disabled=disabled,
                 format_func=lambda r: "none (the values below)" if r is None else f"{r}: {RECIPES[r].summary}")  # fmt: skip
    a, b, c = st.columns(3)
    v: dict[str, Any] = {"method": widget(a, "method", options=list(LEARNERS), format_func=lambda m: f"{m} ({LEARNERS[m].family})")}
    settings = learner_class(v["method"]).settings
    v["backbone"] = widget(b, "backbone", off="backbone" not in settings, options=list(BACKBONES))
    v["distance"] = widget(c, "distance", off="distance" not in settings, options=["euclidean", "cosine"])
    v["optimizer"] = widget(a, "optimizer", options=["adam", "sgd"])
    v["lr"] = widget(b, "lr", min_value=0.0, step=1e-4, format="%.5f")
    v["episodes"] = widget(c, "episodes", min_value=0, step=50)
    a, b, c = st.columns(3)
    for col, name in zip((a, b, c), ("n_way", "k_shot", "q_query"), strict=True):
        v[name] = widget(col, name, min_value=0)
    if extras := extra_settings(v["method"]):
        with st.expander(f"{v['method']} settings", expanded=True):
            for name in extras:
                v[name] = widget(st, name)
    with st.expander("More: seed and augmentation"):
        v["seed"] = widget(st, "seed", min_value=0)
        v["rotations"] = widget(st, "rotations")
        for name in AUGMENTATION:  # 0: off
            v[name] = widget(st, name, min_value=0.0, step=1.0 if name in ("aug_rotation", "aug_shear") else 0.01)
    v["recipe"] = st.session_state.get("tr_recipe")
    state.set_train_form({**state.train_form(), **v})
    return v


def run_config(values: dict[str, Any], data: state.DataChoice) -> RunConfig:
    """RunConfig from the form's values and the chosen data; ConfigError names the setting to change."""
    episodes = values["episodes"]
    every = max(10, episodes // 10)  # about ten validations and checkpoints per run
    log_every = max(1, min(5, episodes // 200))  # enough points for a live curve; each record syncs the device
    chosen = {k: v for k, v in values.items() if k in SHARED or k in learner_class(values["method"]).settings}
    flat = {
        **chosen,
        "dataset": data.dataset,
        "data_dir": data.data_dir,
        "image_size": data.image_size,
        "recipe": values.get("recipe") or "",
    }
    flat |= {"val_every": every, "val_episodes": 50, "checkpoint_every": every, "log_every": log_every}
    return RunConfig.from_flat(flat)
