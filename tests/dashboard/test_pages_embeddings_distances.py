"""AppTest of the Embeddings and Distances pages, untrained and with a tiny trained run."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from core.store import RunStore
from dashboard.loaders import projection_jobs
from dashboard.sidebar import page_path
from dashboard.state import DataChoice, LearnerRef


def figure(at, key: str) -> dict:
    """The plotly figure (as JSON) of the chart with widget key `key`."""
    return json.loads(next(c for c in at.get("plotly_chart") if key in c.proto.id).proto.spec)


def array(data) -> np.ndarray:
    """A figure's array: plotly writes numpy arrays as {"dtype", "bdata" (base64)}, lists as lists."""
    if isinstance(data, dict) and "bdata" in data:
        flat = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        return flat.reshape([int(n) for n in str(data.get("shape", "-1")).split(",")])
    return np.asarray(data)


def chart_keys(at) -> list[str]:
    return [c.proto.id for c in at.get("plotly_chart")]


def texts(elements) -> str:
    return " ".join(e.value for e in elements)


def run_ref(runs_dir: Path, method: str = "protonet") -> LearnerRef:
    run = next(r for r in RunStore(runs_dir).runs() if r.config().learner.method == method)
    return LearnerRef(str(run.path), None, method)


# --- Embeddings ----------------------------------------------------------------------------------


def test_embeddings_of_the_episode_with_no_run_show_prototypes_and_exports(open_app, folder_choice):
    at = open_app("embeddings", ms_data=folder_choice)
    assert at.selectbox(key="em_learner").value == LearnerRef()  # the page says which learner, and offers the others
    assert "An untrained learner's space" in texts(at.caption)
    fig = figure(at, "em_chart")
    names = [t["name"] for t in fig["data"]]
    assert names[0] == "to nearest prototype" and names[-1] == "prototypes" and len(names) == 2 + 5  # 5 classes
    assert at.session_state["ms_episode"] is not None  # the fresh draw became the current episode
    assert {b.proto.label for b in at.get("download_button")} == {"TensorBoard projector files (.zip)", "PCA coordinates (.csv)"}
    assert "Nearest in the original" in texts(at.caption)
    assert (
        len(next(s for s in at.selectbox if s.key.startswith("em_point_")).options) == 30
    )  # 5-way 1-shot 5-query: every point can be inspected


def test_embeddings_of_a_split_sample_with_umap_and_outcome_colours(open_app, folder_choice):
    at = open_app("embeddings", ms_data=folder_choice)
    at.radio(key="em_source").set_value("sample").run()
    at.multiselect(key="em_splits").set_value(["val", "test"]).run()
    at.radio(key="em_colour").set_value("outcome")
    at.radio(key="em_method").set_value("umap").run()
    assert not at.exception, at.exception
    if "computing in the background" in texts(at.info):  # the page does not wait: PCA stands in meanwhile
        assert {b.proto.label for b in at.get("download_button")} >= {"PCA coordinates (.csv)"}
        for job in projection_jobs().running():
            job.future.result(timeout=120)
        at.run()
    assert "computing in the background" not in texts(at.info)
    fig = figure(at, "em_chart")
    assert {t["name"] for t in fig["data"]} <= {"correct", "wrong"}
    xs = np.concatenate([array(t["x"]) for t in fig["data"]])
    assert len(xs) == 200 and np.isfinite(xs).all()  # 10 classes x 20 images: all of them
    assert {b.proto.label for b in at.get("download_button")} >= {"UMAP coordinates (.csv)"}


def test_embeddings_before_and_after_training_and_over_checkpoints(open_app, folder_choice, runs_dir):
    at = open_app("embeddings", ms_data=folder_choice, ms_learner=run_ref(runs_dir))
    assert not at.info or "untrained" not in texts(at.info)
    at.radio(key="em_view").set_value("compare").run()
    assert not at.exception, at.exception
    assert any("em_chart_before" in k for k in chart_keys(at)) and len(chart_keys(at)) == 2
    assert figure(at, "em_chart_before")["layout"]["title"]["text"].startswith("untrained")
    at.radio(key="em_view").set_value("steps").run()
    steps = at.select_slider(key="em_step")
    assert steps.options[0] == "0" and steps.value == 30  # step 0 (initial weights) .. the last checkpoint
    steps.set_value(0).run()
    assert not at.exception, at.exception
    assert "turned (Procrustes)" in texts(at.caption)


def test_embeddings_say_when_the_learner_does_not_fit_the_data(open_app, folder_choice, runs_dir):
    bigger = DataChoice(folder_choice.dataset, folder_choice.data_dir, 32)
    at = open_app("embeddings", ms_data=bigger, ms_learner=run_ref(runs_dir))
    assert "takes 1x28x28 images" in texts(at.error) and "trained on" in texts(at.error)


# --- Distances -----------------------------------------------------------------------------------


def test_distances_with_no_run_show_the_matrices_and_compare_cells(open_app, folder_choice):
    at = open_app("distances", ms_data=folder_choice)
    assert at.selectbox(key="di_learner").value == LearnerRef() and at.radio(key="di_fallback").value == "protonet"
    assert "Learner: an untrained protonet (no run chosen; random weights)" in texts(at.caption)
    assert [k for k in chart_keys(at) if "di_" in k] and len(chart_keys(at)) == 3
    fig = figure(at, "di_query_class")
    names = [t.get("name") for t in fig["data"]]
    assert names[-2:] == ["true class", "predicted"]
    assert array(fig["data"][0]["z"]).shape == (25, 5)  # 5 queries x 5 classes
    at.selectbox(key="di_matrix").set_value("support_support").run()
    at.selectbox(key="di_row").set_value(1)
    at.selectbox(key="di_col").set_value(3).run()
    assert not at.exception, at.exception
    value = next(m for m in at.metric if "distance" in m.label)
    assert float(value.value) > 0  # two different support images


def test_distances_pixel_baseline_and_confusion_over_episodes(open_app, folder_choice):
    at = open_app("distances", ms_data=folder_choice)
    at.radio(key="di_fallback").set_value("pixel_nn").run()
    at.number_input(key="di_episodes").set_value(40)
    at.toggle(key="di_confusion").set_value(True).run()
    assert not at.exception, at.exception
    confusion = figure(at, "di_confusion_chart")
    assert array(confusion["data"][0]["customdata"]).sum() == 40 * 25  # every query of every episode
    assert any(m.label == "Accuracy over these episodes" for m in at.metric)
    assert next(m.value for m in at.metric if m.label == "Accuracy over these episodes") == "100.0% ± 0.0"  # easy data
    assert "No query was taken for another class." in texts(at.caption)
    assert "pixel_nn (no run chosen; it has no weights to train)" in texts(at.caption)


def test_distances_of_a_trained_run_name_it(open_app, folder_choice, runs_dir):
    at = open_app("distances", ms_data=folder_choice, ms_learner=run_ref(runs_dir))
    assert not at.info
    assert "at step 30" in texts(at.caption) and "queries right" in texts(at.caption)


def test_distances_say_when_the_learner_does_not_fit_the_data(open_app, folder_choice, runs_dir):
    bigger = DataChoice(folder_choice.dataset, folder_choice.data_dir, 32)
    at = open_app("distances", ms_data=bigger, ms_learner=run_ref(runs_dir))
    assert "takes 1x28x28 images" in texts(at.error) and not at.get("plotly_chart")


def test_a_maml_run_shows_its_inner_loop_and_the_space_before_and_after_adapting(open_app, folder_choice, tiny_config, tmp_path: Path):
    from core.training.run import train_run

    config = tiny_config(folder_choice, episodes=10, method="maml")
    run = RunStore(tmp_path / "maml").create(config)
    assert train_run(config, run) == "finished"
    at = open_app("embeddings", ms_data=folder_choice, ms_learner=LearnerRef(str(run.path), None, "maml"))
    at.radio(key="em_view").set_value("adapt").run()
    assert not at.exception
    curves = figure(at, "em_inner_loop")
    query_loss = next(t for t in curves["data"] if t["name"] == "query loss")
    assert array(query_loss["x"]).tolist() == list(range(config.learner.inner_steps + 1))  # step 0, then after each step
    keys = " ".join(chart_keys(at))
    assert (
        "em_chart_before" in keys and any(k.endswith("-em_chart") for k in chart_keys(at)) and "the points move" in texts(at.caption)
    )  # MAML adapts its backbone
    at.radio(key="em_source").set_value("sample").run()  # no support set to adapt on: back to the learner's own view
    assert not at.exception and at.radio(key="em_view").value == "current"
    at.switch_page(page_path("distances.py")).run()
    assert not at.exception and "di_inner_loop" in " ".join(chart_keys(at)) and "Query loss" in texts(at.caption)
