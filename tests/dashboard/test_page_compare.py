"""AppTest of the Every learner page: one episode through the visitor's learners and the pixel baseline, and its link."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from core.store import RunStore
from core.training.run import train_run
from dashboard.sidebar import page_path
from dashboard.state import DataChoice
from tests.dashboard.conftest import make_tiny_config


def test_the_episode_through_every_learner_with_disagreements_and_a_link(open_app, folder_choice, runs_dir: Path):
    maml = make_tiny_config(folder_choice, episodes=4, method="maml")
    assert train_run(maml, RunStore(runs_dir).create(maml)) == "finished"
    at = open_app("compare", ms_data=folder_choice, ms_runs_dir=str(runs_dir))
    assert not at.exception and not at.error
    chosen = at.multiselect(key="cp_runs")
    assert len(chosen.value) == 3  # every run of the visitor's that takes these images (protonet, pixel_nn, maml)
    accuracy, predictions = at.dataframe[0].value, at.dataframe[1].value
    assert len(accuracy) == 4 and accuracy.iloc[-1]["learner"] == "pixel_nn"  # the untrained baseline comes last
    assert accuracy["accuracy on this episode"].between(0, 1).all()
    inner = accuracy.set_index("what").loc["trained maml", "before → after adapting"]
    assert "% → " in inner  # the MAML family's accuracy before and after its inner steps
    spec = at.session_state["ms_episode"]
    assert len(predictions) == sum(len(q) for q in spec.query)  # a row per query
    learners = [c for c in predictions.columns if c not in ("query", "true class", "right")]
    marks = np.array([[cell[0] for cell in predictions[c]] for c in learners])
    assert set(marks.ravel()) <= {"✓", "✗"}
    split = [len({cell[2:] for cell in row}) > 1 for row in predictions[learners].itertuples(index=False)]
    assert f"{sum(split)} of {len(split)} queries split the learners" in " ".join(c.value for c in at.caption)
    assert [c.key for c in at.get("plotly_chart") if "cp_inner" in c.proto.id]  # the inner-loop chart of the maml run

    link = dict(at.query_params)
    assert link["data"] == "folder" and link["learners"].count(",") == 2
    other = open_app("compare", ms_runs_dir=str(runs_dir), ms_data=DataChoice())  # a fresh session opens the link
    for key, value in link.items():
        other.query_params[key] = value
    other.run()
    assert not other.exception and not other.warning
    assert other.session_state["ms_episode"] == spec and other.multiselect(key="cp_runs").value == chosen.value


def test_a_link_naming_a_missing_run_says_so_and_shows_the_rest(open_app, folder_choice, runs_dir: Path):
    at = open_app("compare", ms_data=folder_choice, ms_runs_dir=str(runs_dir))
    at.query_params["learners"] = "no-such-run"
    at.run()
    assert "no-such-run" in at.warning[0].value and "is not in" in at.warning[0].value
    assert not at.exception and at.dataframe[0].value.iloc[-1]["learner"] == "pixel_nn"


def test_learners_chosen_at_another_image_size_give_way_to_those_that_take_these_images(open_app, folder_choice, runs_dir: Path):
    at = open_app("compare", ms_data=folder_choice, ms_runs_dir=str(runs_dir))
    assert len(at.multiselect(key="cp_runs").value) == 2  # the 28 px runs, chosen
    config = make_tiny_config(folder_choice, episodes=4)
    config = replace(config, train=replace(config.train, image_size=42))
    run = RunStore(runs_dir).create(config)
    assert train_run(config, run) == "finished"
    at.session_state["ms_data"] = DataChoice(folder_choice.dataset, folder_choice.data_dir, 42)  # as a 42 px learner made current does
    at.switch_page(page_path("home.py")).run()
    at.switch_page(page_path("compare.py")).run()
    assert not at.exception and at.multiselect(key="cp_runs").value == [run.path.name]
    assert len(at.dataframe[0].value) == 2  # the 42 px run and the pixel baseline
