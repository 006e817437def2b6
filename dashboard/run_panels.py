"""Panels of a run: live progress and controls while it trains; a saved run's row, figures and evaluation."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from core.config import EpisodeShape, RunConfig
from core.evaluation import EvalResult, evaluate
from core.experiment import load_learner
from core.store import CheckpointError, RunDir
from core.training.background import TrainingRun
from core.training.live import RunSnapshot
from dashboard import loaders, state
from dashboard.charts.training import accuracy_histogram
from dashboard.errors import USER_ERRORS, show_error, ui_message
from dashboard.i18n import N_, tr
from dashboard.labels import duration, status_label


def run_progress(snap: RunSnapshot, config: RunConfig | None = None) -> None:
    """Progress bar and the figures of a run: episode, loss, accuracies, speed, time left (none while paused);
    with `config`, why validation accuracy may be the higher one."""
    status = status_label(snap.status)
    st.progress(min(snap.step / max(snap.total, 1), 1.0), text=tr("{run} · {status} · episode {step} of {total}", run=snap.run_id,
                status=status, step=snap.step, total=snap.total))  # fmt: skip
    last = snap.train[-1] if snap.train else {}
    val = snap.val[-1] if snap.val else {}
    cols = st.columns(5)
    cols[0].metric(tr("Loss"), f"{last['loss']:.3f}" if last else "–")
    cols[1].metric(tr("Training accuracy"), f"{100 * last['train_acc']:.1f}%" if last else "–")
    cols[2].metric(tr("Validation accuracy"), f"{100 * val['val_acc']:.1f}% ± {100 * val['val_ci']:.1f}" if val else "–")
    cols[3].metric(tr("Episodes / s"), f"{snap.episodes_per_s:.1f}" if last else "–")
    eta = snap.eta_s
    cols[4].metric(tr("Time left"), status if snap.status == "paused" else "–" if eta is None else duration(eta))
    if config is not None and val:
        train_n, val_n = config.train.train_shape.n_way, config.train.eval_shape.n_way
        st.caption(tr(
            "Training accuracy is on the training episodes ({train_n}-way, training classes); validation accuracy on {val_n}-way "
            "episodes of the validation classes, with ±95% confidence. Telling {val_n} classes apart is easier than {train_n}, "
            "so validation accuracy can be the higher one.", train_n=train_n, val_n=val_n,
        ) if val_n < train_n else tr(
            "Training accuracy is on the training episodes; validation accuracy on episodes of the validation classes, never "
            "trained on, with ±95% confidence."
        ))  # fmt: skip


def run_controls(run: TrainingRun, snap: RunSnapshot) -> None:
    """Pause / Resume / Stop for a run that has not ended. Callbacks act before the redraw, so the buttons show the new state."""
    if snap.status == "queued":  # its controls are the queue panel's
        return
    cols = st.columns([1, 1, 1, 3])
    cols[0].button(tr("Pause"), key="tr_pause", on_click=run.pause, disabled=snap.status != "running", icon=":material/pause:")
    cols[1].button(tr("Resume"), key="tr_resume", on_click=run.resume, disabled=snap.status != "paused", icon=":material/play_arrow:")
    cols[2].button(tr("Stop"), key="tr_stop", on_click=run.stop, disabled=snap.done or snap.status == "stopping", icon=":material/stop:")


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


TABLE_COLUMNS = {"run": N_("run"), "status": N_("status"), "created": N_("created"), "method": N_("learner"), "backbone": N_("backbone"),
                 "dataset": N_("dataset"), "shape": N_("shape"), "step": N_("step")}  # fmt: skip


def run_row(run: RunDir) -> dict[str, Any]:
    """A table row for a saved run; a damaged folder gives a row whose 'problem' says what is wrong."""
    info = run.info()
    created = info.get("created")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if created else ""
    row: dict[str, Any] = {"run": run.id, "status": status_label(run.status()), "created": when}
    try:
        config = run.config()
    except CheckpointError as exc:
        return {**row, "problem": str(exc)}
    shape = config.train.train_shape
    row.update(method=config.learner.method, backbone=config.learner.backbone, dataset=config.train.dataset)
    row.update(shape=f"{shape.n_way}-way {shape.k_shot}-shot", step=info.get("final_step"), val_acc=info.get("final_val_acc"))
    busy = run.status() == "running"  # trained now, here or by another process
    row["problem"] = "" if busy else (checkpoint_problem(str(run.path), checkpoints_stamp(run)) or "")  # mid-run: checkpoints still coming
    return row


def owned(runs: list[RunDir], me: str) -> tuple[list[RunDir], list[RunDir]]:
    """(the visitor's runs and those nobody owns, from the command line or older versions; other visitors' runs)."""
    mine = [r for r in runs if r.info().get("owner") in (None, me)]
    return mine, [r for r in runs if r not in mine]


def runs_table(rows: list[dict[str, Any]], current: str | None = None) -> None:
    """The runs, newest first, with a caption saying what the table holds; ★ marks the current learner's run."""
    frame = pd.DataFrame(rows)
    frame.insert(0, "current", ["★" if r["run"] == current else "" for r in rows])
    st.caption(tr(
        "Runs in {folder}, newest first: yours and those started from the command line (other visitors' runs on request below). "
        "★ marks the current learner; “problem” says why a run cannot be loaded; val acc is the last validation accuracy.",
        folder=state.runs_dir(),
    ))  # fmt: skip
    columns = {
        "current": st.column_config.TextColumn("", width="small", help=tr("the current learner")),
        "val_acc": st.column_config.NumberColumn(tr("val acc"), format="percent"),
        "problem": st.column_config.TextColumn(tr("problem"), width="large"),
        **{name: st.column_config.Column(tr(TABLE_COLUMNS[name])) for name in TABLE_COLUMNS},
    }
    st.dataframe(frame, hide_index=True, column_config=columns)


def run_figures(run: RunDir) -> None:
    """The final figures run.json records: status, episodes trained, validation accuracy, size, device."""
    info = run.info()
    cols = st.columns(4)
    cols[0].metric(tr("Status"), status_label(run.status()))
    cols[1].metric(tr("Episodes trained"), info.get("final_step", "–"))
    val = info.get("final_val_acc")
    cols[2].metric(tr("Final validation accuracy"), "–" if val is None else f"{100 * val:.1f}%")
    cols[3].metric(tr("Parameters"), f"{info['parameters']:,}" if "parameters" in info else "–")
    if "device" in info:
        st.caption(tr("Trained on {device} with images of shape {shape}.", device=info["device"], shape=info.get("input_shape", "?")))


def evaluation_panel(run: RunDir, config: RunConfig) -> None:
    """Evaluate a run's latest checkpoint on its dataset's test split, then show the last result."""
    shape = config.train.eval_shape
    st.subheader(tr("Evaluate"))
    st.caption(tr("Accuracy on episodes of the **test** classes of {dataset}, never seen in training.", dataset=config.train.dataset))
    cols = st.columns([1, 1, 1, 1.4, 2], vertical_alignment="bottom")
    n = cols[0].number_input("N", min_value=1, value=shape.n_way, key="rn_eval_n")
    k = cols[1].number_input("K", min_value=1, value=shape.k_shot, key="rn_eval_k")
    q = cols[2].number_input("Q", min_value=1, value=shape.q_query, key="rn_eval_q")
    episodes = int(cols[3].number_input(tr("Test episodes"), min_value=10, max_value=5000, value=300, step=100, key="rn_eval_episodes"))
    if cols[4].button(tr("Evaluate on the test split"), key="rn_eval", icon=":material/fact_check:"):
        with st.status(tr("Evaluating {run} on {n} test episodes…", run=run.id, n=episodes), expanded=True) as status:
            try:
                st.write(tr("Loading the learner and the test classes…"))
                learner = loaders.learner(state.LearnerRef(str(run.path), None, config.learner.method))
                pool = loaders.class_pool(loaders.run_data_choice(config), "test", config.train.split_seed)
                st.write(tr("Scoring {episodes} episodes of {n} classes from {total} test classes…", episodes=episodes, n=n,
                            total=pool.n_classes))  # fmt: skip
                result = evaluate(learner, pool, EpisodeShape(n, k, q), episodes, seed=0)
                state.set_evaluation(str(run.path), result)
                done = tr("Evaluated on {n} test episodes: {acc}% ± {ci} accuracy", n=episodes, acc=f"{100 * result.accuracy:.2f}",
                          ci=f"{100 * result.ci95:.2f}")  # fmt: skip
                status.update(label=done, state="complete", expanded=False)
            except USER_ERRORS as exc:
                status.update(label=tr("Evaluation failed"), state="error", expanded=True)
                show_error(exc)
    if (result := state.evaluation(str(run.path))) is not None:
        evaluation_report(result)


def evaluation_report(result: EvalResult) -> None:
    """Accuracy ± 95% CI, the spread over episodes and the per-class precision / recall / F1 table."""
    cols = st.columns(3)
    ci_help = tr("mean over episodes ± the 95% confidence interval (1.96 std / √episodes)")
    cols[0].metric(tr("Test accuracy"), f"{100 * result.accuracy:.2f}% ± {100 * result.ci95:.2f}", help=ci_help)
    cols[1].metric(tr("Episodes"), tr("{n} × {way}-way {shot}-shot", n=result.episodes, way=result.n_way, shot=result.k_shot))
    cols[2].metric(tr("Time"), f"{result.seconds:.1f} s")
    left, right = st.columns([2, 3])
    left.plotly_chart(accuracy_histogram(result.episode_accuracy, result.accuracy, result.ci95), key="rn_eval_hist")
    table = pd.DataFrame({"class": result.class_names, "precision": result.precision, "recall": result.recall, "F1": result.f1})
    bars = {c: st.column_config.ProgressColumn(tr(c), min_value=0.0, max_value=1.0, format="%.2f") for c in ("precision", "recall", "F1")}
    bars["class"] = st.column_config.TextColumn(tr("class"))
    right.dataframe(table, hide_index=True, height=300, column_config=bars)
