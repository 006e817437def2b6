"""The Tasks page (AppTest) and its figure builders, on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.charts.tasks import (
    factor_rows,
    gain_rows,
    group_loadings,
    group_order,
    loadings_heatmap,
    similarity_heatmap,
    start_curves,
    task_colours,
    task_scatter,
)
from tests.dashboard.test_pages_embeddings_distances import array, chart_keys, figure, run_ref, texts

# --- figure builders -----------------------------------------------------------------------------


def test_task_scatter_has_a_trace_per_colour_and_marks_new_tasks():
    coords = np.arange(10, dtype=float).reshape(5, 2)
    fig = task_scatter(coords, ["A", "B", "A", "B", "A"], ["stored", "stored", "new", "new", "stored"], [f"t{i}" for i in range(5)])
    assert [t.name for t in fig.data] == ["A", "B"]
    a = fig.data[0]
    assert list(a.customdata) == [0, 2, 4] and list(a.marker.symbol) == ["circle", "diamond", "circle"]
    assert list(a.x) == [0.0, 4.0, 8.0] and list(a.text) == ["t0", "t2", "t4"]
    with pytest.raises(ValueError, match="5 points"):
        task_scatter(coords, ["A"], ["new"] * 5, ["t"] * 5)


def test_task_colours_by_group_kind_or_class():
    groups, kinds, classes = ["g1", "g2"], ["stored", "new"], [(1, 2), (3, 4)]
    assert task_colours("group", groups, kinds, classes) == ["g1", "g2"]
    assert task_colours("stored or new", groups, kinds, classes) == ["stored", "new"]
    assert task_colours(3, groups, kinds, classes) == ["does not", "holds it"]


def test_similarity_heatmap_sorts_tasks_by_group():
    s = np.array([[1.0, 0.1, 0.9], [0.1, 1.0, 0.2], [0.9, 0.2, 1.0]])
    fig = similarity_heatmap(s, ["b", "a", "b"])
    assert list(group_order(["b", "a", "b"])) == [1, 0, 2]
    z = np.asarray(fig.data[0].z)
    np.testing.assert_allclose(z, s[np.ix_([1, 0, 2], [1, 0, 2])])
    assert list(fig.layout.xaxis.ticktext) == ["a", "b"] and list(fig.layout.xaxis.tickvals) == [0, 1]
    assert fig.data[0].zmin == -1 and fig.data[0].zmax == 1
    with pytest.raises(ValueError, match="3 tasks"):
        similarity_heatmap(np.eye(2), ["a", "b", "c"])


def test_start_curves_draw_a_line_and_a_ci_band_per_start():
    fig = start_curves([0, 1, 5], {"cold": ([0.2, 0.8, 0.85], [0.0, 0.02, 0.01]), "warm": ([0.7, 0.82, 0.86], [0.02, 0.02, 0.01])})
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["cold", "warm"]
    np.testing.assert_allclose(lines[1].y, [70, 82, 86])
    band = fig.data[0]
    np.testing.assert_allclose(band.y, [20, 82, 86, 84, 78, 20])  # upper edge out, lower edge back
    assert list(band.x) == [0, 1, 5, 5, 1, 0] and band.fill == "toself"


def test_loadings_heatmap_averages_tasks_per_group():
    loadings = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    means, names = group_loadings(loadings, ["x", "x", "y"])
    assert names == ["x", "y"]
    np.testing.assert_allclose(means, [[2.0, 0.0], [0.0, 2.0]])
    fig = loadings_heatmap(loadings, ["x", "x", "y"])
    assert list(fig.data[0].x) == ["factor 0", "factor 1"] and list(fig.data[0].y) == ["x", "y"]


def test_tables_of_factors_and_gains():
    rows = factor_rows([[("Greek", 0.4)], [("Latin", 0.3)]], [[("Greek/c1", 1.5)], [("Latin/c2", 0.9)]])
    assert rows[1] == {"factor": 1, "top groups": "Latin (0.30)", "top features": "Latin/c2 (0.90)"}
    gains = gain_rows([0, 1], {"warm": ([0.5, 0.012], [0.02, 0.004])})
    assert gains[1] == {"steps": 1, "warm − cold": "+1.20 ± 0.40"}


# --- the page ------------------------------------------------------------------------------------


def test_tasks_page_without_a_run_asks_for_one(open_app, folder_choice):
    at = open_app("tasks", ms_data=folder_choice)
    assert not at.exception, at.exception
    assert "Choose a trained run" in texts(at.info) and not chart_keys(at)


def test_tasks_page_runs_a_study_and_draws_every_view(open_app, folder_choice, runs_dir):
    at = open_app("tasks", ms_data=folder_choice, ms_learner=run_ref(runs_dir))
    assert not at.exception, at.exception
    assert not chart_keys(at)  # nothing heavy until asked
    at.number_input(key="ta_stored").set_value(20)
    at.number_input(key="ta_new").set_value(8)
    at.number_input(key="ta_k").set_value(3)
    at.toggle(key="ta_run").set_value(True).run()
    assert not at.exception, at.exception
    keys = " ".join(chart_keys(at))
    assert all(k in keys for k in ("ta_map", "ta_similarity", "ta_curves", "ta_loadings"))
    scatter = figure(at, "ta_map")
    assert sum(len(array(t["x"])) for t in scatter["data"]) == 28  # 20 stored + 8 new tasks
    assert array(figure(at, "ta_similarity")["data"][0]["z"]).shape == (28, 28)
    curves = [t["name"] for t in figure(at, "ta_curves")["data"] if t.get("mode") == "lines+markers"]
    assert curves == ["cold", "cold-random", "warm", "warm-random"]
    assert len(at.dataframe) == 2 and len(at.dataframe[0].value) == 4  # a gain row per step: 0, 1, 5, 10
    captions = [c for image in at.image for c in image.captions]
    assert captions[0].startswith("new task 0") and sum(c.startswith("stored task") for c in captions) == 5
    at.selectbox(key="ta_colour").set_value("stored or new").run()
    assert not at.exception, at.exception
    assert {t["name"] for t in figure(at, "ta_map")["data"]} == {"stored", "new"}


def test_tasks_page_says_what_to_change_when_tasks_cannot_be_drawn(open_app, folder_choice, runs_dir):
    at = open_app("tasks", ms_data=folder_choice, ms_learner=run_ref(runs_dir))
    at.selectbox(key="ta_library").set_value("classes")  # 5 test classes halved: too few for 5-way tasks
    at.toggle(key="ta_run").set_value(True).run()
    assert not at.exception, at.exception
    assert "use fewer classes per task" in texts(at.error)
