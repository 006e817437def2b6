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
    row: dict[str, Any] = {"run": run.id, "status": run.status(), "created": when}
    try:
        config = run.config()
    except CheckpointError as exc:
        return {**row, "problem": str(exc)}
    shape = config.train.train_shape
    row.update(method=config.learner.method, backbone=config.learner.backbone, dataset=config.train.dataset)
    row.update(shape=f"{shape.n_way}-way {shape.k_shot}-shot", step=info.get("final_step"), val_acc=info.get("final_val_acc"))
    busy = row["status"] == "running"  # trained now, here or by another process
    row["problem"] = "" if busy else (checkpoint_problem(str(run.path), checkpoints_stamp(run)) or "")  # mid-run: checkpoints still coming
    return row


def runs_table(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(rows)
    columns = {"val_acc": st.column_config.NumberColumn("val acc", format="percent"), "problem": st.column_config.TextColumn(width="large")}
    st.dataframe(frame, hide_index=True, column_config=columns)


def run_figures(run: RunDir) -> None:
    """The final figures run.json records: status, episodes trained, validation accuracy, size, device."""
    info = run.info()
    cols = st.columns(4)
    cols[0].metric("Status", run.status())
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
