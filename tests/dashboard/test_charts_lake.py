"""The Lake figure as a pure function: a run's stored errors against the published ones, conditions named."""

from __future__ import annotations

from dataclasses import asdict

import torch

from core.lake import LAKE_WAYS, LakeOptions, lake_result, reference_errors
from dashboard.charts.lake import lake_chart, result_label

PLAIN = LakeOptions()


def stored(wrong: list[list[int]], options: LakeOptions = PLAIN) -> dict:
    """A result as core.lake.store_result keeps it, from which queries were wrong in each episode (a few of the
    20 queries of Lake's runs: only the error matters here)."""
    result = lake_result(torch.tensor(wrong, dtype=torch.float32), ["Sanskrit"] * len(wrong))
    return {**result.to_dict(), "n_way": LAKE_WAYS, "split": "test", "options": asdict(options)}


def test_run_points_carry_their_ci_and_every_reference_is_a_line_with_its_condition():
    plain = stored([[1, 0, 0, 0], [0, 0, 0, 0]])  # 1 of 4 wrong, then none: 12.5% on average
    balanced = stored([[0, 0, 0, 0], [0, 0, 0, 0]], LakeOptions(balance=True))
    fig = lake_chart([plain, balanced], reference_errors())
    run = next(t for t in fig.data if t.name == "this run (± 95% CI)")
    assert list(run.y) == [12.5, 0.0] and list(run.error_y.array) == [plain["ci95"], 0.0] and plain["ci95"] > 0
    lines = {t.name: t for t in fig.data if t.mode == "lines"}
    assert len(lines) == 8
    expected = {
        "people 4.5% — 40 people, no background training": 4.5,
        "BPL 3.3% — Bayesian Program Learning, 30 background alphabets": 3.3,
        "BPL (minimal) 4.3% — background set small1 (5 alphabets)": 4.3,
        "BPL (minimal) 4% — background set small2 (5 alphabets)": 4.0,
        "Siamese convnet 8% — Koch et al. 2015: 30 background alphabets, affine distortions": 8.0,
        "deep convnet 13.5% — 30 background alphabets": 13.5,
        "deep convnet (minimal) 24% — background set small1 (5 alphabets)": 24.0,
        "deep convnet (minimal) 22.3% — background set small2 (5 alphabets)": 22.3,
    }
    assert {name: t.y[0] for name, t in lines.items()} == expected
    assert all(list(t.x) == [-0.5, 1.5] and t.y[0] == t.y[1] for t in lines.values())  # across both run points
    assert list(fig.layout.xaxis.ticktext) == ["inductive<br>2 episodes", "transductive: balance<br>2 episodes"]  # one line a part
    assert fig.layout.yaxis.range[1] > 24.0  # every line is in view


def test_labels_name_test_time_options():
    assert result_label(stored([[0, 1]], LakeOptions(tta=16))) == "inductive: TTA ×16 · 1 episode"
    assert result_label(stored([[0, 1]], LakeOptions(center=True, refine=3))) == "transductive: center, refine 3 · 1 episode"
    aligned = LakeOptions(tta=32, tta_strength=1.5, align=True)
    assert result_label(stored([[0, 1]], aligned)) == "inductive: TTA ×32 at strength 1.5, aligned · 1 episode"
    assert result_label(stored([[0, 1]], LakeOptions(tta=32, tta_strength=1.5))) == "inductive: TTA ×32 at strength 1.5 · 1 episode"


def test_a_result_on_other_classes_than_the_test_runs_says_so():
    validation = {**stored([[0, 1, 0]]), "split": "val", "n_way": 17}
    assert result_label(validation) == "val, 17-way · inductive · 1 episode"
    assert result_label({**stored([[0, 1]]), "n_way": 10}) == "test, 10-way · inductive · 1 episode"
