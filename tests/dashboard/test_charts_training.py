"""Figure builders as pure functions: training curves, run comparison, evaluation histogram, image strips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dashboard.charts.images import GAP_GREY, image_strip, png_data_uri, thumbnail
from dashboard.charts.training import accuracy_histogram, compare_curves, split_records, training_curves

TRAIN = [{"step": s, "loss": 2.0 / s, "train_acc": 0.2 * s, "lr": 1e-3} for s in (1, 2, 3, 4)]
VAL = [{"step": 2, "val_acc": 0.5, "val_ci": 0.05}, {"step": 4, "val_acc": 0.75, "val_ci": 0.04}]


def traces(fig) -> dict:
    return {t.name: t for t in fig.data}


def test_training_curves_has_loss_left_and_accuracies_right():
    fig = training_curves(TRAIN, VAL)
    by_name = traces(fig)
    assert set(by_name) == {"training loss", "training accuracy", "validation accuracy"}
    loss, acc, val = by_name["training loss"], by_name["training accuracy"], by_name["validation accuracy"]
    assert list(loss.x) == [1, 2, 3, 4] and list(loss.y) == [2.0, 1.0, 2.0 / 3, 0.5]
    assert loss.xaxis == "x" and acc.xaxis == "x2" and val.xaxis == "x2"  # two panels
    assert list(val.x) == [2, 4] and list(val.y) == [0.5, 0.75]
    assert list(val.error_y.array) == [0.05, 0.04]  # the CI is drawn, not dropped
    assert fig.layout.xaxis.title.text == "episode" and fig.layout.xaxis2.title.text == "episode"
    assert fig.layout.yaxis.title.text == "loss" and fig.layout.yaxis2.title.text == "accuracy"
    assert fig.layout.yaxis2.tickformat == ".0%"


def test_training_curves_without_validation_or_records():
    assert "validation accuracy" not in traces(training_curves(TRAIN))
    empty = training_curves([], [])
    assert all(len(t.x) == 0 for t in empty.data)
    waiting = [a for a in empty.layout.annotations if "waiting" in a.text]  # says why the chart is empty
    assert [(a.xref, a.yref) for a in waiting] == [("x domain", "y domain"), ("x2 domain", "y2 domain")]  # inside each plot
    assert all(a.y == 0.5 for a in waiting)  # clear of the axis titles


def test_early_charts_tick_whole_episodes():
    early = training_curves(TRAIN[:2])
    assert early.layout.xaxis.dtick == 1 and early.layout.xaxis2.dtick == 1 and early.layout.xaxis.tickformat == "d"
    late = training_curves([{**r, "step": 100 * r["step"]} for r in TRAIN])
    assert late.layout.xaxis.dtick is None and late.layout.xaxis.tickformat == "d"


def test_split_records_by_kind():
    tagged = [{"kind": "train", **r} for r in TRAIN] + [{"kind": "val", **r} for r in VAL]
    train, val = split_records(tagged)
    assert [r["step"] for r in train] == [1, 2, 3, 4] and [r["step"] for r in val] == [2, 4]


def test_compare_curves_one_line_per_run():
    a = [{"kind": "train", **r} for r in TRAIN] + [{"kind": "val", **r} for r in VAL]
    b = [{"kind": "train", "step": 1, "loss": 9.0, "train_acc": 0.1}]
    fig = compare_curves({"run-a": a, "run-b": b}, "loss")
    assert [t.name for t in fig.data] == ["run-a", "run-b"]
    colours = [t.line.color for t in fig.data]
    assert None not in colours and len(set(colours)) == 2  # set here, each its own hue (the theme would give shades of blue)
    assert list(fig.data[1].y) == [9.0]
    val = compare_curves({"run-a": a, "run-b": b}, "val_acc")
    assert list(val.data[0].y) == [0.5, 0.75] and len(val.data[1].x) == 0  # run-b never validated
    assert val.layout.yaxis.title.text == "accuracy"
    with pytest.raises(ValueError, match="unknown metric"):
        compare_curves({"run-a": a}, "f1")


def test_accuracy_histogram_marks_mean_and_ci():
    fig = accuracy_histogram([0.6, 0.8, 0.8, 1.0], accuracy=0.8, ci95=0.1)
    assert list(fig.data[0].x) == [0.6, 0.8, 0.8, 1.0]
    shapes = {s.type: s for s in fig.layout.shapes}
    assert shapes["line"].x0 == 0.8
    assert (shapes["rect"].x0, shapes["rect"].x1) == pytest.approx((0.7, 0.9))
    assert fig.layout.title.text.startswith("mean 80.0% ± 10.0") and not fig.layout.annotations  # nothing drawn over the bars


def test_image_strip_upscales_with_nearest_neighbour():
    images = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    images[1, 0, 0, 0] = 255  # one bright pixel in the second image
    strip = np.asarray(image_strip(images, scale=3, gap=2))
    assert strip.shape == (12, 3 * 12 + 2 * 2)
    second = strip[:, 14:26]
    assert (second[:3, :3] == 255).all() and second[3:, :].max() == 0  # the pixel became a sharp 3x3 block
    assert (strip[:, 12:14] == GAP_GREY).all()


def test_image_strip_rgb_and_thumbnail_and_bad_input():
    rgb = torch.full((2, 3, 5, 5), 7, dtype=torch.uint8)
    assert image_strip(rgb, scale=2, gap=1).size == (21, 10) and image_strip(rgb).mode == "RGB"
    assert thumbnail(rgb[0], scale=4).size == (20, 20)
    with pytest.raises(ValueError, match="uint8"):
        image_strip(torch.zeros(2, 1, 4, 4))


def test_inner_loop_curves_draw_query_and_support_per_inner_step():
    from dashboard.charts.training import inner_loop_curves

    trace = [
        {"step": s, "loss": 1.6 - 0.3 * s, "accuracy": 0.2 + 0.2 * s, "support_loss": 1.6 - 0.5 * s, "support_accuracy": 0.2 + 0.4 * s}
        for s in range(3)
    ]
    fig = inner_loop_curves(trace)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"query loss", "query accuracy", "support loss", "support accuracy"}
    assert list(by_name["query loss"].x) == [0, 1, 2] and list(by_name["support accuracy"].y) == pytest.approx([0.2, 0.6, 1.0])
    assert by_name["query loss"].xaxis == "x" and by_name["query accuracy"].xaxis == "x2"  # loss left, accuracy right


def test_png_data_uri_round_trips_the_pixels():
    import base64
    import io

    from PIL import Image

    image = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    uri = png_data_uri(image)
    assert uri.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert decoded.size == (28, 28) and np.array_equal(np.asarray(decoded), image[0].numpy())
