"""The Train page's form: a learner, its own settings (as the learner declares them), the episodes, a recipe."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.config import AUGMENT_LIMITS, RunConfig
from core.learners import LEARNERS, learner_class
from core.learners.functional import FastWeightLearner
from core.models.backbones import BACKBONES
from core.recipes import RECIPES
from dashboard import state
from dashboard.i18n import tr
from dashboard.inputs import keyed
from dashboard.labels import FAMILIES, label

FIRST_TRY_EPISODES = 200  # a run long enough to see curves move, short enough to wait for
AUGMENTATION = tuple(f"aug_{name}" for name in AUGMENT_LIMITS)  # strengths of the training augmentation (core.augment)
SHARED = ("method", "backbone", "distance", "optimizer", "lr", "episodes", "n_way", "k_shot", "q_query", "meta_batch", "seed", "rotations",
          *AUGMENTATION)  # fmt: skip
VAL_N_WAY = RunConfig().train.eval_shape.n_way  # the validation episodes' classes (fewer where the val split is smaller)
PER_LEARNER = ("n_way", "k_shot", "q_query", "lr", "meta_batch")  # what a learner's recipe sets besides its own settings
INNER_LOOP_RECIPE = "fomaml"  # a learner with an inner loop but no recipe (finetune) trains as the MAML family does


def form_defaults() -> dict[str, Any]:
    """Starting values of the form: core's defaults (every learner setting), with a run length that suits a first try."""
    flat = RunConfig().to_flat()
    learner_settings = {s for cls in LEARNERS.values() for s in cls.settings}
    defaults = {k: v for k, v in flat.items() if k in SHARED or k in learner_settings} | {"episodes": FIRST_TRY_EPISODES}
    return defaults | learner_defaults(defaults["method"])


def learner_defaults(method: str) -> dict[str, Any]:
    """The episode shape, learning rate and meta-batch `method` usually trains with (its recipe's, or its family's),
    over core's defaults: metric learners train on more classes than they are tested on, the MAML family on the
    test shape."""
    flat = RunConfig().to_flat()
    name = method if method in RECIPES else INNER_LOOP_RECIPE if issubclass(learner_class(method), FastWeightLearner) else None
    values = dict(RECIPES[name].values) if name else {}
    return {k: values.get(k, flat[k]) for k in PER_LEARNER}


def apply_learner_defaults() -> None:
    """on_change of the learner box: its usual shape and learning rate into the form (runs before the widgets are drawn)."""
    for key, value in learner_defaults(st.session_state["tr_method"]).items():
        st.session_state[f"tr_{key}"] = value


def extra_settings(method: str) -> tuple[str, ...]:
    """The settings of `method` beyond backbone and distance, as its class declares them; the meta-batch goes with an inner loop."""
    cls = learner_class(method)
    extras = tuple(s for s in cls.settings if s not in ("backbone", "distance"))
    return (*extras, "meta_batch") if cls.family == "optimization" else extras


def apply_recipe() -> None:
    """on_change of the recipe box: its values into the form's widgets (runs before they are drawn). Its image
    size, which is no widget, goes into the run (run_config); the pages follow once the run is the current learner."""
    name, fields = st.session_state.get("tr_recipe"), form_defaults()
    for key, value in (RECIPES[name].values if name else {}).items():
        if key in fields:  # (val_every, like image_size, is the page's to set)
            st.session_state[f"tr_{key}"] = value


def train_image_size(values: dict[str, Any], data: state.DataChoice) -> int:
    """The image size a run of the form trains on: its recipe's, when the recipe names one; else the session's."""
    recipe = RECIPES.get(values.get("recipe") or "")
    return recipe.values.get("image_size", data.image_size) if recipe else data.image_size


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

    recipes = ["", *RECIPES]  # "": none (None would show Streamlit's own, untranslated "Choose an option")
    named = lambda r: f"{r}: {tr(RECIPES[r].summary)}" if r else tr("none (the values below)")  # noqa: E731
    st.selectbox(tr("Start from a recipe"), recipes, key=keyed("tr_recipe", d.get("recipe") or ""), on_change=apply_recipe,
                 disabled=disabled, format_func=named)  # fmt: skip
    a, b, c = st.columns(3)
    family = lambda m: f"{m} ({tr(FAMILIES[LEARNERS[m].family])})"  # noqa: E731
    v: dict[str, Any] = {"method": widget(a, "method", options=list(LEARNERS), format_func=family, on_change=apply_learner_defaults)}
    settings = learner_class(v["method"]).settings
    v["backbone"] = widget(b, "backbone", off="backbone" not in settings, options=list(BACKBONES))
    v["distance"] = widget(c, "distance", off="distance" not in settings, options=["euclidean", "cosine"])
    a, b, c = st.columns(3)  # a row of its own: on a phone the columns stack in this order
    v["optimizer"] = widget(a, "optimizer", options=["adam", "sgd"])
    v["lr"] = widget(b, "lr", min_value=0.0, step=1e-4, format="%.5f")
    v["episodes"] = widget(c, "episodes", min_value=0, step=50)
    a, b, c = st.columns(3)
    for col, name in zip((a, b, c), ("n_way", "k_shot", "q_query"), strict=True):
        v[name] = widget(col, name, min_value=0)
    st.caption(shape_note(v["method"], v["n_way"], state.shape().n_way))
    if extras := extra_settings(v["method"]):
        with st.expander(tr("{method} settings", method=v["method"]), expanded=True):
            for name in extras:
                v[name] = widget(st, name)
    with st.expander(tr("More: seed and augmentation")):
        v["seed"] = widget(st, "seed", min_value=0)
        v["rotations"] = widget(st, "rotations")
        for name in AUGMENTATION:  # 0: off
            v[name] = widget(st, name, min_value=0.0, step=1.0 if name in ("aug_rotation", "aug_shear") else 0.01)
    v["recipe"] = st.session_state.get("tr_recipe") or None
    state.set_train_form({**state.train_form(), **v})
    return v


def shape_note(method: str, n_way: int, episode_n_way: int) -> str:
    """Why the training episodes may have more classes than the episode on screen (and than the test episodes)."""
    cls = learner_class(method)
    if cls.family == "baseline" and not issubclass(cls, FastWeightLearner):
        return tr("The pixel baseline has nothing to learn: a run only records its accuracy, for comparison with trained learners.")
    if cls.family == "metric":
        if n_way > episode_n_way:
            return tr(
                "Choosing a learner sets the episode shape it usually trains with. Metric learners train on harder episodes "
                "than they are tested on ({n}-way here, {m}-way on the Episodes page): telling more classes apart sharpens "
                "the metric (Snell et al., 2017). Validation uses {v}-way episodes of other classes.",
                n=n_way, m=episode_n_way, v=VAL_N_WAY,
            )  # fmt: skip
        return tr(
            "Metric learners usually train on more classes per episode than they are tested on (their recipes: 20 or 30): "
            "telling more classes apart sharpens the metric (Snell et al., 2017). Validation uses {v}-way episodes of other classes.",
            v=VAL_N_WAY,
        )  # fmt: skip
    return tr(
        "Choosing a learner sets the episode shape it usually trains with: the MAML family and model-based learners "
        "train on episodes shaped like the test ones (their output layer has one unit per class). Validation uses {v}-way episodes.",
        v=VAL_N_WAY,
    )


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
        "image_size": train_image_size(values, data),
        "recipe": values.get("recipe") or "",
    }
    flat |= {"val_every": every, "val_episodes": 50, "checkpoint_every": every, "log_every": log_every}
    return RunConfig.from_flat(flat)
