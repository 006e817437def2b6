"""Figure builders of the Embeddings and Distances pages, and the selection events they read back."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.charts.distances import PICKER_NAME, confusion_heatmap, matrix_heatmap, picked_cell
from dashboard.charts.space import LEGEND_MAX, OUTCOME_COLORS, PROTOTYPE_SYMBOL, category_colors, embedding_scatter, selected_rows


def small_space(n: int = 6):
    coords = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    labels = ["a", "a", "b", "b", "a", "b"][:n]
    group = ["support", "support", "query", "query", "query", "query"][:n]
    return coords, labels, list(range(100, 100 + n)), group


def test_scatter_has_a_trace_per_category_diamonds_for_support_and_star_prototypes() -> None:
    coords, labels, images, group = small_space()
    protos = np.array([[0.0, 0.0], [5.0, 5.0]], dtype=np.float32)
    fig = embedding_scatter(coords, labels, labels, images, group, protos, ["a", "b"], links=[(2, 1), (4, 0)])
    by_name = {t.name: t for t in fig.data}
    assert list(by_name) == ["to nearest prototype", "a", "b", "prototypes"]
    a = by_name["a"]
    assert list(a.x) == [0, 2, 8] and list(a.marker.symbol) == ["diamond", "diamond", "circle"]
    assert [row[0] for row in a.customdata] == [0, 1, 4] and a.customdata[2][2] == 104
    assert by_name["prototypes"].marker.symbol == PROTOTYPE_SYMBOL
    assert list(by_name["prototypes"].marker.color) == [category_colors(labels)["a"], category_colors(labels)["b"]]
    lines = by_name["to nearest prototype"]
    assert list(lines.x) == [4.0, 5.0, None, 8.0, 0.0, None]  # point 2 -> prototype 1, point 4 -> prototype 0
    assert fig.layout.yaxis.scaleanchor == "x"


def test_scatter_switches_to_webgl_and_hides_a_huge_legend() -> None:
    n = 2000
    coords = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    labels = [f"class {i % (LEGEND_MAX + 5)}" for i in range(n)]
    fig = embedding_scatter(coords, labels, labels, range(n), ["test"] * n)
    assert all(isinstance(t, go.Scattergl) for t in fig.data) and len(fig.data) == LEGEND_MAX + 5
    assert fig.layout.showlegend is False
    assert sum(len(t.x) for t in fig.data) == n


def test_outcome_colours_are_fixed_and_shared_colours_are_used() -> None:
    colors = category_colors(["wrong", "correct", "support"])
    assert colors == OUTCOME_COLORS and list(colors) == ["correct", "wrong", "support"]  # a fixed legend order
    coords, labels, images, group = small_space()
    fig = embedding_scatter(coords, labels, labels, images, group, colors={"a": "#010101", "b": "#020202"})
    assert [t.marker.color for t in fig.data] == ["#010101", "#020202"]


def test_prototypes_keep_a_colour_when_points_are_coloured_by_outcome() -> None:
    coords, _, images, group = small_space()
    outcome = ["support", "support", "correct", "wrong", "correct", "correct"]
    protos = np.array([[0.0, 0.0], [5.0, 5.0]], dtype=np.float32)
    fig = embedding_scatter(coords, outcome, ["a", "a", "b", "b", "a", "b"], images, group, protos, ["a", "b"])
    stars = next(t for t in fig.data if t.name == "prototypes")
    assert len(set(stars.marker.color)) == 1 and stars.marker.color[0] not in {"#222", "black", *OUTCOME_COLORS.values()}


def test_selected_rows_reads_clicks_boxes_and_typed_arrays_but_not_prototypes() -> None:
    event = {
        "selection": {
            "points": [
                {"curve_number": 1, "customdata": [4, "a", 104, "query"]},
                {"curve_number": 2, "customdata": {"0": 2, "1": "b"}},  # plotly's typed-array form
                {"curve_number": 3, "customdata": [-1, "prototype of a", "–", ""]},
                {"curve_number": 0},  # a line segment has no customdata
                {"curve_number": 1, "customdata": [4, "a", 104, "query"]},
            ]
        }
    }
    assert selected_rows(event) == [4, 2]
    assert selected_rows(None) == [] and selected_rows({"selection": {"points": []}}) == []


def test_heatmap_values_marks_and_picker() -> None:
    values = np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.4]])
    fig = matrix_heatmap(values, ["q0", "q1"], ["A", "B", "C"], "distance", lower_is_closer=True, predicted=[0, 1], true=[1, 1])
    heat, picker, true, predicted = fig.data
    np.testing.assert_array_equal(np.asarray(heat.z), values)
    assert heat.reversescale is True  # distances: low (close) values bright
    assert (list(true.x), list(true.y)) == ([1, 1], [0, 1]) and true.marker.symbol == "square-open"
    assert (list(predicted.x), list(predicted.y)) == ([0, 1], [0, 1]) and predicted.marker.symbol == "x"
    assert picker.name == PICKER_NAME and len(picker.x) == 6 and picker.hoverinfo != "skip"  # skipped points get no clicks
    assert list(picker.customdata[5]) == ["q1", "C", 0.4]
    assert list(fig.layout.xaxis.ticktext) == ["A", "B", "C"] and fig.layout.yaxis.autorange == "reversed"
    with pytest.raises(ValueError, match="labels"):
        matrix_heatmap(values, ["q0"], ["A", "B", "C"], "distance")


def test_picked_cell_reads_the_cell_position() -> None:
    assert picked_cell({"selection": {"points": [{"curve_number": 1, "x": 2, "y": 1, "customdata": {"0": "q1"}}]}}) == (1, 2)
    assert picked_cell({"selection": {"points": []}}) is None and picked_cell(None) is None


def test_confusion_colours_are_row_shares_and_hover_counts() -> None:
    fig = confusion_heatmap([[8, 2], [0, 0]], ["x", "y"])
    np.testing.assert_allclose(np.asarray(fig.data[0].z), [[0.8, 0.2], [0.0, 0.0]])
    np.testing.assert_array_equal(np.asarray(fig.data[0].customdata), [[8, 2], [0, 0]])
