"""UI pieces shared by the pages: the sidebar, error reporting, episode grids, the training form, run rows.

Pages stay short scripts by calling these; nothing here does tensor work beyond indexing images to show.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

import pandas as pd
import streamlit as st

from core.analysis.projection import ProjectionError
from core.atomic import StorageError
from core.config import ConfigError, EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.data import DATASETS, DataError, ImageSet
from core.episodes import EpisodeSpec
from core.evaluation import EvalResult, evaluate
from core.experiment import load_learner
from core.learners import LEARNERS
from core.models.backbones import BACKBONES
from core.store import CheckpointError, RunDir
from core.training import RunError, RunSnapshot, TrainingRun, active_run
from dashboard import loaders, state
from dashboard.charts.images import image_strip, thumbnail
from dashboard.charts.training import accuracy_histogram
from dashboard.sidebar import (  # noqa: F401 - the pages use them through widgets too
    ROOT,
    current_training_run,
    device_label,
    episode_label,
    learner_label,
    link,
    page_path,
    sidebar,
)

USER_ERRORS = (ConfigError, DataError, CheckpointError, RunError, StorageError, ProjectionError)
# core's messages are written for the command line too: (pattern, what the page calls it)
_UI_WORDING = (
    (re.compile(r",? or run `python -m core download omniglot`[^;.]*"), ""),
    (re.compile(r"point --data-dir(?: \(or \$METASCOPE_OMNIGLOT\))? at"), "enter in the Data folder box (Episodes page)"),
    (re.compile(r"needs --data-dir"), "needs a Data folder (Episodes page)"),
    (re.compile(r"--data-dir"), "the Data folder box"),
    (re.compile(r"use --device cpu or auto"), "run the dashboard on a machine with that GPU, or on the CPU"),
    (re.compile(r"\bn_way\s*=\s*"), "N = "),
    (re.compile(r"\bk_shot\s*=\s*"), "K = "),
    (re.compile(r"\bq_query\s*=\s*"), "Q = "),
)


def ui_message(error: BaseException | str) -> str:
    """An engine message in the page's words: no command-line flags, N/K/Q as the forms name them."""
    text = str(error)
    for pattern, words in _UI_WORDING:
        text = pattern.sub(words, text)
    return text


def show_error(error: BaseException | str) -> None:
    st.error(ui_message(error), icon=":material/error:")


def keyed(key: str, default: Any) -> str:
    """Widget key seeded from plain state: widget values vanish when a page is left, state does not."""
    if key not in st.session_state:
        st.session_state[key] = default
    return key


def nudge(key: str, delta: int) -> None:
    """on_click callback: add `delta` to an int widget's value (runs before the widget is drawn)."""
    st.session_state[key] = int(st.session_state.get(key, 0)) + delta


@contextmanager
def reported(stop: bool = True) -> Iterator[None]:
    """Show a user error (bad setting, data, checkpoint, run) as st.error; st.stop() the page when `stop`.

    The rest of the block is skipped, so nothing half-done is stored; other exceptions are bugs and propagate.
    """
    try:
        yield
    except USER_ERRORS as exc:
        show_error(exc)
        if stop:
            st.stop()


# --- datasets and episodes -----------------------------------------------------------------------


FOLDER_HINTS = {
    "omniglot": "the Omniglot folder (background/evaluation zips, or alphabet/character/png folders)",
    "folder": "a folder with one sub-folder of images per class",
}


def dataset_picker() -> state.DataChoice | None:
    """Dataset selector with a folder input where the dataset needs one; None while the folder is missing."""
    current = state.data_choice()
    left, right = st.columns([1, 3])
    name = left.selectbox("Dataset", list(DATASETS), key=keyed("ep_dataset", current.dataset))
    data_dir = None
    if name != "glyphs":
        default = current.data_dir if current.dataset == name else (state.default_omniglot_dir() if name == "omniglot" else "")
        hint = FOLDER_HINTS[name]
        data_dir = right.text_input("Data folder", key=keyed(f"ep_dir_{name}", default or ""), placeholder=hint).strip() or None
        if data_dir is None:
            st.info(f"Enter the data folder: {hint}.")
            return None
    choice = state.DataChoice(name, data_dir, current.image_size)
    state.set_data_choice(choice)
    return choice


def class_label(image_set: ImageSet, class_id: int) -> str:
    """The class name, with its group (alphabet) unless the name already starts with it."""
    name = image_set.class_names[class_id]
    group = image_set.class_groups[class_id] if image_set.class_groups else None
    return name if group is None or name.startswith(f"{group}/") else f"{name} ({group})"


def episode_grid(image_set: ImageSet, spec: EpisodeSpec) -> None:
    """One row per class: its name, its support images, its query images (28x28 upscaled, sharp)."""
    k, q = len(spec.support[0]), len(spec.query[0])
    widths = [1.2, max(k, 2), max(min(q, 10), 3)]
    head = st.columns(widths)
    head[1].markdown(f"**Support** · {k} per class")
    head[2].markdown(f"**Query** · {q} per class")
    for class_id, support, query in zip(spec.class_ids, spec.support, spec.query, strict=True):
        label, left, right = st.columns(widths, vertical_alignment="center")
        label.markdown(f"**{class_label(image_set, class_id)}**")
        left.image(image_strip(image_set.images[list(support)], scale=3))
        right.image(image_strip(image_set.images[list(query)], scale=2))


def slot_options(spec: EpisodeSpec) -> list[str]:
    """'part:class_pos:slot' for every image of the episode."""
    return [f"{part}:{i}:{j}" for part in ("support", "query") for i, row in enumerate(getattr(spec, part)) for j in range(len(row))]


def slot_swapper(image_set: ImageSet, spec: EpisodeSpec, limit: int = 24) -> EpisodeSpec | None:
    """Choose an image of the episode, then a replacement among its class's other images -> the new spec."""

    def describe(option: str) -> str:
        part, i, j = option.split(":")
        return f"{class_label(image_set, spec.class_ids[int(i)])} · {part} image {int(j) + 1}"

    slot = st.selectbox("Image to replace", slot_options(spec), format_func=describe, key="ep_slot")
    part, i, j = slot.split(":")
    i, j = int(i), int(j)
    used = set(spec.support[i]) | set(spec.query[i])
    candidates = [x for x in image_set.indices_of(spec.class_ids[i]).tolist() if x not in used][:limit]
    current = getattr(spec, part)[i][j]
    st.image(thumbnail(image_set.images[current], scale=3), caption=f"now: image #{current}")
    if not candidates:
        st.info("This class has no other images to swap in.")
        return None
    st.caption("Click a replacement from the same class:")
    columns = st.columns(12)
    for n, index in enumerate(candidates):
        with columns[n % 12]:
            st.image(thumbnail(image_set.images[index], scale=2), caption=f"#{index}")
            if st.button("Use", key=f"ep_swap_{index}"):
                return spec.with_image(part, i, j, index)
    return None


# --- training ------------------------------------------------------------------------------------

SETTING_WIDGETS = {  # LearnerConfig / TrainConfig field -> (label, kind); kind picks the widget
    "margin": ("Loss margin", "float"),
    "fce": ("Full-context embeddings", "bool"),
    "relation_hidden": ("Relation module hidden units", "int"),
    "inner_steps": ("Inner steps", "int"),
    "inner_lr": ("Inner learning rate", "float"),
    "first_order": ("First order (drop second derivatives)", "bool"),
    "meta_batch": ("Episodes per step (meta-batch)", "int"),
    "hidden": ("Hidden size", "int"),
}
LEARNER_EXTRAS = tuple(f.name for f in fields(LearnerConfig) if f.name in SETTING_WIDGETS)  # the rest (meta_batch) is TrainConfig


def _config_reads(tree: ast.AST) -> set[str]:
    """Attribute names read off `config` or `self.config` in code (comments and docstrings are not code)."""
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and (
            (isinstance(node.value, ast.Name) and node.value.id == "config")
            or (isinstance(node.value, ast.Attribute) and node.value.attr == "config")
        )
    }


@functools.cache
def config_fields_read(method: str) -> frozenset[str]:
    """The LearnerConfig fields `method`'s learner class reads, as its own code says (`config.<field>`
    in the class and its bases), so a new learner or setting needs no table here to show up."""
    known = {f.name for f in fields(LearnerConfig)}
    read: set[str] = set()
    for cls in LEARNERS[method].__mro__:
        if cls.__module__.startswith("core.learners"):
            read |= _config_reads(ast.parse(textwrap.dedent(inspect.getsource(cls))))
    return frozenset(read & known)


def extra_settings(method: str) -> tuple[str, ...]:
    """The method-specific settings `method` reads (only these are shown), in SETTING_WIDGETS order.

    A setting the class overrides for good is hidden: first order where the learner is always first
    order or never differentiates through its inner loop. The meta-batch goes with an inner loop."""
    cls = LEARNERS[method]
    read = set(config_fields_read(method))
    if getattr(cls, "always_first_order", False) or not getattr(cls, "differentiable_inner_loop", True):
        read.discard("first_order")
    if cls.family == "optimization":
        read.add("meta_batch")
    return tuple(name for name in SETTING_WIDGETS if name in read)


def uses_backbone(method: str) -> bool:
    return "backbone" in config_fields_read(method)


def uses_distance(method: str) -> bool:
    return "distance" in config_fields_read(method)


def form_defaults() -> dict[str, Any]:
    """Starting values of the training form: core's defaults, with a run length that suits a first try."""
    learner, train = LearnerConfig(), TrainConfig()
    values = {f: getattr(learner, f) for f in ("method", "backbone", "distance", *SETTING_WIDGETS) if hasattr(learner, f)}
    shape = train.train_shape
    values.update(
        optimizer=train.optimizer, lr=train.lr, episodes=200, meta_batch=train.meta_batch, seed=train.seed, rotations=train.rotations
    )
    return {**values, "n_way": shape.n_way, "k_shot": shape.k_shot, "q_query": shape.q_query}


def train_form(disabled: bool) -> dict[str, Any]:
    """The training settings as plain values (validated later by core), kept in state across page switches.

    Number inputs accept out-of-range values on purpose: core's ConfigError then says what to change.
    """
    d = {**form_defaults(), **state.train_form()}

    def widget(col: Any, kind: str, name: str, label: str, off: bool = False, **kw: Any) -> Any:
        make = {"select": col.selectbox, "number": col.number_input, "check": col.checkbox}[kind]
        return make(label, key=keyed(f"tr_{name}", d[name]), disabled=disabled or off, **kw)

    a, b, c = st.columns(3)
    v = {"method": widget(a, "select", "method", "Learner", options=list(LEARNERS), format_func=lambda m: f"{m} ({LEARNERS[m].family})")}
    v["backbone"] = widget(b, "select", "backbone", "Backbone", off=not uses_backbone(v["method"]), options=list(BACKBONES))
    v["distance"] = widget(c, "select", "distance", "Distance", off=not uses_distance(v["method"]), options=["euclidean", "cosine"])
    v["optimizer"] = widget(a, "select", "optimizer", "Optimizer", options=["adam", "sgd"])
    v["lr"] = float(widget(b, "number", "lr", "Learning rate", min_value=0.0, step=1e-4, format="%.5f"))
    v["episodes"] = int(widget(c, "number", "episodes", "Training episodes", min_value=0, step=50))
    a, b, c = st.columns(3)
    v["n_way"] = int(widget(a, "number", "n_way", "N (classes per episode)", min_value=0, step=1))
    v["k_shot"] = int(widget(b, "number", "k_shot", "K (support images per class)", min_value=0, step=1))
    v["q_query"] = int(widget(c, "number", "q_query", "Q (queries per class)", min_value=0, step=1))
    if extras := extra_settings(v["method"]):
        with st.expander(f"{v['method']} settings", expanded=True):
            for name in extras:
                label, kind = SETTING_WIDGETS[name]
                if kind == "bool":
                    v[name] = widget(st, "check", name, label)
                else:
                    v[name] = (int if kind == "int" else float)(widget(st, "number", name, label, step=1 if kind == "int" else 0.1))
    with st.expander("More: seed and augmentation"):
        v["seed"] = int(widget(st, "number", "seed", "Seed", min_value=0, step=1))
        v["rotations"] = widget(st, "check", "rotations", "Rotated copies as extra classes (Omniglot practice)")
    state.set_train_form({**state.train_form(), **v})
    return v


def run_config(values: dict[str, Any], data: state.DataChoice) -> RunConfig:
    """RunConfig from the form's values; ConfigError names the setting to change."""
    learner_fields = {f: values[f] for f in LEARNER_EXTRAS if f in values}
    learner = LearnerConfig(method=values["method"], backbone=values["backbone"], distance=values["distance"], **learner_fields)
    episodes = values["episodes"]
    every = max(10, episodes // 10)  # about ten validations and checkpoints per run
    log_every = max(1, min(5, episodes // 200))  # enough points for a live curve; each record syncs the device
    train = TrainConfig(
        dataset=data.dataset, data_dir=data.data_dir, image_size=data.image_size, episodes=episodes,
        train_shape=EpisodeShape(values["n_way"], values["k_shot"], values["q_query"]),
        eval_shape=EpisodeShape(5, values["k_shot"], 15), meta_batch=values.get("meta_batch", 1),
        rotations=values["rotations"], optimizer=values["optimizer"], lr=values["lr"], seed=values["seed"],
        val_every=every, val_episodes=50, checkpoint_every=every, log_every=log_every,
    )  # fmt: skip
    return RunConfig(learner, train)


def run_progress(snap: RunSnapshot) -> None:
    """Progress bar and the figures of a run: episode, loss, accuracies, speed, time left."""
    st.progress(min(snap.step / max(snap.total, 1), 1.0), text=f"{snap.run_id} · {snap.status} · episode {snap.step} of {snap.total}")
    last = snap.train[-1] if snap.train else {}
    val = snap.val[-1] if snap.val else {}
    cols = st.columns(5)
    cols[0].metric("Loss", f"{last['loss']:.3f}" if last else "–")
    cols[1].metric("Training accuracy", f"{100 * last['train_acc']:.1f}%" if last else "–")
    cols[2].metric("Validation accuracy", f"{100 * val['val_acc']:.1f}% ± {100 * val['val_ci']:.1f}" if val else "–")
    cols[3].metric("Episodes / s", f"{snap.episodes_per_s:.1f}" if last else "–")
    eta = snap.eta_s
    cols[4].metric("Time left", "–" if eta is None else time.strftime("%M:%S", time.gmtime(eta)) if eta < 3600 else f"{eta / 3600:.1f} h")


def run_controls(run: TrainingRun, snap: RunSnapshot) -> None:
    """Pause / Resume / Stop for a run that has not ended. Callbacks act before the redraw, so the buttons show the new state."""
    cols = st.columns([1, 1, 1, 5])
    cols[0].button("Pause", key="tr_pause", on_click=run.pause, disabled=snap.status != "running", icon=":material/pause:")
    cols[1].button("Resume", key="tr_resume", on_click=run.resume, disabled=snap.status != "paused", icon=":material/play_arrow:")
    cols[2].button("Stop", key="tr_stop", on_click=run.stop, disabled=snap.done or snap.status == "stopping", icon=":material/stop:")


# --- saved runs ----------------------------------------------------------------------------------


@st.cache_data(max_entries=256, show_spinner=False)
def checkpoint_problem(run_dir: str, stamp: float) -> str | None:
    """Why the run's latest checkpoint cannot be loaded, or None when it loads (cached per checkpoint mtime)."""
    try:
        load_learner(run_dir)
    except CheckpointError as exc:
        return ui_message(exc)
    return None


def checkpoints_stamp(run: RunDir) -> float:
    saved = run.checkpoints()
    return saved[-1].path.stat().st_mtime if saved else 0.0


def run_row(run: RunDir) -> dict[str, Any]:
    """A table row for a saved run; a damaged folder gives a row whose 'problem' says what is wrong."""
    info = run.info()
    created = info.get("created")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if created else ""
    row: dict[str, Any] = {"run": run.id, "status": info.get("status", "?"), "created": when}
    try:
        config = run.config()
    except CheckpointError as exc:
        return {**row, "problem": str(exc)}
    shape = config.train.train_shape
    row.update(method=config.learner.method, backbone=config.learner.backbone, dataset=config.train.dataset)
    row.update(shape=f"{shape.n_way}-way {shape.k_shot}-shot", step=info.get("final_step"), val_acc=info.get("final_val_acc"))
    active = active_run()
    busy = active is not None and active.id == run.id
    row["problem"] = "" if busy else (checkpoint_problem(str(run.path), checkpoints_stamp(run)) or "")  # mid-run: checkpoints still coming
    return row


def runs_table(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(rows)
    columns = {"val_acc": st.column_config.NumberColumn("val acc", format="percent"), "problem": st.column_config.TextColumn(width="large")}
    st.dataframe(frame, hide_index=True, column_config=columns)


def run_figures(info: dict[str, Any]) -> None:
    """The final figures run.json records: status, episodes trained, validation accuracy, size, device."""
    cols = st.columns(4)
    cols[0].metric("Status", info.get("status", "?"))
    cols[1].metric("Episodes trained", info.get("final_step", "–"))
    val = info.get("final_val_acc")
    cols[2].metric("Final validation accuracy", "–" if val is None else f"{100 * val:.1f}%")
    cols[3].metric("Parameters", f"{info['parameters']:,}" if "parameters" in info else "–")
    if "device" in info:
        st.caption(f"Trained on {info['device']} with images of shape {info.get('input_shape', '?')}.")


def evaluation_panel(run: RunDir, config: RunConfig) -> None:
    """Evaluate a run's latest checkpoint on its dataset's test split, then show the last result."""
    shape = config.train.eval_shape
    st.subheader("Evaluate")
    st.caption(f"Accuracy on episodes of the **test** classes of {config.train.dataset}, never seen in training.")
    cols = st.columns([1, 1, 1, 1.4, 2], vertical_alignment="bottom")
    n = cols[0].number_input("N", min_value=1, value=shape.n_way, key="rn_eval_n")
    k = cols[1].number_input("K", min_value=1, value=shape.k_shot, key="rn_eval_k")
    q = cols[2].number_input("Q", min_value=1, value=shape.q_query, key="rn_eval_q")
    episodes = int(cols[3].number_input("Test episodes", min_value=10, max_value=5000, value=300, step=100, key="rn_eval_episodes"))
    if cols[4].button("Evaluate on the test split", key="rn_eval", icon=":material/fact_check:"):
        with st.status(f"Evaluating {run.id} on {episodes} test episodes…", expanded=True) as status:
            try:
                st.write("Loading the learner and the test classes…")
                learner = loaders.learner(state.LearnerRef(str(run.path), None, config.learner.method))
                pool = loaders.class_pool(loaders.run_data_choice(config), "test", config.train.split_seed)
                st.write(f"Scoring {episodes} episodes of {n} classes from {pool.n_classes} test classes…")
                result = evaluate(learner, pool, EpisodeShape(n, k, q), episodes, seed=0)
                state.set_evaluation(str(run.path), result)
                done = f"Evaluated on {episodes} test episodes: {100 * result.accuracy:.2f}% ± {100 * result.ci95:.2f} accuracy"
                status.update(label=done, state="complete", expanded=False)
            except USER_ERRORS as exc:
                status.update(label="Evaluation failed", state="error", expanded=True)
                show_error(exc)
    if (result := state.evaluation(str(run.path))) is not None:
        evaluation_report(result)


def evaluation_report(result: EvalResult) -> None:
    """Accuracy ± 95% CI, the spread over episodes and the per-class precision / recall / F1 table."""
    cols = st.columns(3)
    ci_help = "mean over episodes ± the 95% confidence interval (1.96 std / √episodes)"
    cols[0].metric("Test accuracy", f"{100 * result.accuracy:.2f}% ± {100 * result.ci95:.2f}", help=ci_help)
    cols[1].metric("Episodes", f"{result.episodes} × {result.n_way}-way {result.k_shot}-shot")
    cols[2].metric("Time", f"{result.seconds:.1f} s")
    left, right = st.columns([2, 3])
    left.plotly_chart(accuracy_histogram(result.episode_accuracy, result.accuracy, result.ci95), key="rn_eval_hist")
    table = pd.DataFrame({"class": result.class_names, "precision": result.precision, "recall": result.recall, "F1": result.f1})
    bars = {c: st.column_config.ProgressColumn(c, min_value=0.0, max_value=1.0, format="%.2f") for c in ("precision", "recall", "F1")}
    right.dataframe(table, hide_index=True, height=300, column_config=bars)
