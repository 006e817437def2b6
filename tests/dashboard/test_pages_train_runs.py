"""AppTest of the Train and Runs pages: real (tiny) runs in a temporary runs folder."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.config import RunConfig
from core.lake import LakeOptions, lake_result, store_result, stored_results
from core.store import RunStore
from core.training.background import start_run
from core.training.registry import REGISTRY, active_runs, get_run
from core.training.run import train_run
from dashboard.sidebar import page_path
from dashboard.state import ISOLATE_ENV, DataChoice, LearnerRef
from dashboard.train_form import AUGMENTATION, extra_settings, form_defaults, run_config

JOIN_S = 180


def figure(at, key: str) -> dict:
    """The plotly figure (as JSON) of the chart with widget key `key`."""
    charts = [c for c in at.get("plotly_chart") if json.loads(c.proto.spec).get("layout") is not None and key in c.proto.id]
    return json.loads(charts[0].proto.spec)


def trace_names(fig: dict) -> list[str]:
    return [t.get("name") for t in fig["data"]]


def wait_for(condition: Callable[[], bool], timeout_s: float = JOIN_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def set_form(at, **values) -> None:
    for key, value in values.items():
        widget = at.number_input(key=f"tr_{key}") if not isinstance(value, bool) else at.checkbox(key=f"tr_{key}")
        widget.set_value(value) if not isinstance(value, bool) else (widget.check() if value else widget.uncheck())


# --- Train ---------------------------------------------------------------------------------------


def test_train_shows_learners_with_family_and_only_relevant_settings(open_app, folder_choice):
    at = open_app("train", ms_data=folder_choice)
    method = at.selectbox(key="tr_method")
    assert "protonet (metric)" in method.options and "pixel_nn (baseline)" in method.options
    assert not at.selectbox(key="tr_distance").disabled
    assert all(k not in {w.key for w in at.number_input} for k in ("tr_margin", "tr_inner_steps"))  # not read by protonet
    method.set_value("pixel_nn").run()
    assert at.selectbox(key="tr_distance").disabled and at.selectbox(key="tr_backbone").disabled
    assert "No run yet" in at.info[-1].value


def test_method_settings_appear_only_for_the_methods_that_read_them(open_app, folder_choice):
    at = open_app("train", ms_data=folder_choice)
    common = {"tr_lr", "tr_episodes", "tr_n_way", "tr_k_shot", "tr_q_query", "tr_seed", "tr_rotations", *(f"tr_{a}" for a in AUGMENTATION)}

    def shown() -> set[str]:
        return {w.key for w in (*at.number_input, *at.checkbox)} - common

    expected = {
        "maml": {"tr_inner_steps", "tr_inner_lr", "tr_first_order", "tr_meta_batch"},
        "fomaml": {"tr_inner_steps", "tr_inner_lr", "tr_meta_batch"},  # always first order: no switch
        "siamese": {"tr_margin"},
        "matching": {"tr_fce"},
        "protonet": set(),
    }
    for method, keys in expected.items():
        at.selectbox(key="tr_method").set_value(method).run()
        assert shown() == keys, method
        assert at.selectbox(key="tr_distance").disabled == (method != "protonet")
    at.selectbox(key="tr_method").set_value("maml").run()
    at.number_input(key="tr_inner_lr").set_value(0.0)
    at.button(key="tr_start").click().run()
    assert "the inner learning rate must be positive (got 0.0) (see “Inner learning rate”)" in at.error[0].value and not active_runs()


def test_settings_shown_are_the_ones_the_learner_declares():
    from core.learners import LEARNERS

    for method, cls in LEARNERS.items():  # every setting offered is declared (tests/test_learner_settings.py: and read)
        assert set(extra_settings(method)) - {"meta_batch"} == set(cls.settings) - {"backbone", "distance"}, method
    assert extra_settings("learned_optimizer") == ("inner_steps", "inner_lr", "first_order", "hidden", "meta_batch")
    assert extra_settings("reptile") == ("inner_steps", "inner_lr", "meta_batch")  # never differentiates its inner loop
    assert extra_settings("relation") == ("relation_hidden",) and extra_settings("blackbox") == ("hidden",)


def test_run_config_carries_the_form_values(folder_choice):
    values = {**form_defaults(), "method": "maml", "inner_steps": 3, "inner_lr": 0.2, "first_order": True, "meta_batch": 4, "episodes": 500}
    config = run_config(values, folder_choice)
    assert (config.learner.method, config.learner.inner_steps, config.learner.inner_lr, config.learner.first_order) == (
        "maml",
        3,
        0.2,
        True,
    )
    assert config.train.meta_batch == 4 and config.train.episodes == 500 and config.train.dataset == "folder"
    assert config.train.val_every == 50 and config.train.log_every == 2  # ten validations; a live curve with many points


def test_bad_settings_show_core_messages_and_start_nothing(open_app, folder_choice, tmp_path: Path):
    at = open_app("train", ms_data=folder_choice)
    set_form(at, n_way=1)
    at.button(key="tr_start").click().run()
    assert "an episode needs at least 2 classes (got 1) (see “N (classes per episode)”)" in at.error[0].value
    set_form(at, n_way=5, lr=0.0)
    at.button(key="tr_start").click().run()
    assert "the learning rate must be above 0 and at most 10 (got 0.0) (see “Learning rate”)" in at.error[0].value
    set_form(at, lr=0.001, n_way=15, rotations=False)  # the train split has 10 classes
    at.button(key="tr_start").click().run()
    assert "use at most 10 classes per episode" in at.error[0].value
    assert not active_runs() and not (tmp_path / "runs").exists()
    assert at.number_input(key="tr_n_way").value == 15  # the user's input is kept


@pytest.mark.parametrize("in_process", [False, True], ids=["thread", "process"])
def test_a_real_run_trains_in_the_background_and_its_curves_are_drawn(open_app, folder_choice, tmp_path: Path, monkeypatch, in_process):
    monkeypatch.setenv(ISOLATE_ENV, "1" if in_process else "0")  # threads by default; a child process on request
    at = open_app("train", ms_data=folder_choice)
    set_form(at, episodes=30, n_way=5, k_shot=1, q_query=5)
    at.button(key="tr_start").click().run()
    assert not at.exception and not at.error
    run = get_run(at.session_state["ms_run_id"])
    assert run is not None and Path(run.snapshot().run_dir).parent == tmp_path / "runs"
    assert run.isolated == in_process
    assert run.join(JOIN_S), "the tiny run did not finish"
    at.run()
    shown = metrics(at)
    assert float(shown["Loss"]) >= 0 and shown["Training accuracy"].endswith("%")
    assert "±" in shown["Validation accuracy"] and float(shown["Episodes / s"]) > 0
    fig = figure(at, "tr_curves")
    assert set(trace_names(fig)) == {"training loss", "training accuracy", "validation accuracy"}
    loss = next(t for t in fig["data"] if t["name"] == "training loss")
    assert loss["x"][-1] == 30 and len(loss["x"]) == len(run.snapshot().train)
    assert "finished at episode 30" in at.success[0].value
    assert at.session_state["ms_learner"] == LearnerRef(run.snapshot().run_dir, None, "protonet")  # current once it ended
    assert run.id in " ".join(m.value for m in at.sidebar.markdown)


def test_a_refreshed_session_finds_the_run_and_a_second_start_is_refused(open_app, folder_choice):
    stale = open_app("train", ms_data=folder_choice)  # opened before any run: its Start is enabled
    me = stale.session_state["ms_visitor"]
    first = open_app("train", ms_data=folder_choice, ms_visitor=me)  # a second tab of the same browser
    set_form(first, episodes=100_000)
    first.button(key="tr_start").click().run()
    run = get_run(first.session_state["ms_run_id"])
    first.switch_page(page_path("runs.py")).run()  # leaving the page neither stops the run nor starts another
    assert not first.exception and first.dataframe[0].value["run"].tolist() == [run.id]
    first.switch_page(page_path("train.py")).run()
    assert active_runs() == [run] and first.session_state["ms_run_id"] == run.id
    refreshed = open_app("train", ms_data=folder_choice, ms_visitor=me)  # a browser refresh: a new session, the same visitor
    assert refreshed.session_state["ms_run_id"] == run.id
    assert refreshed.button(key="tr_start").disabled and "Leaving this page does not stop it" in refreshed.info[0].value
    stale.button(key="tr_start").click().run()  # its rerun sees the run first: the click starts nothing
    assert not stale.exception and "Your run is training or waiting" in stale.info[0].value
    assert stale.session_state["ms_run_id"] == run.id and active_runs() == [run]
    assert len(RunStore(stale.session_state["ms_runs_dir"]).runs()) == 1  # no second run folder
    wait_for(lambda: run.snapshot().status == "running")
    refreshed.run()
    refreshed.button(key="tr_pause").click().run()
    assert run.snapshot().status == "paused"
    assert metrics(refreshed)["Time left"] == "paused"  # the clock stops with the run
    refreshed.button(key="tr_resume").click().run()
    assert run.snapshot().status == "running"
    refreshed.button(key="tr_stop").click().run()
    assert run.join(JOIN_S) and run.snapshot().status == "stopped"


def test_another_visitor_sees_none_of_my_run_and_waits_in_the_queue(open_app, folder_choice):
    ann = open_app("train", ms_data=folder_choice)
    bob = open_app("train", ms_data=folder_choice)  # another browser: another visitor
    assert ann.session_state["ms_visitor"] != bob.session_state["ms_visitor"]
    set_form(ann, episodes=100_000)
    ann.button(key="tr_start").click().run()
    anns = get_run(ann.session_state["ms_run_id"])
    bob.run()
    assert "No run yet" in bob.info[-1].value and not bob.button(key="tr_start").disabled
    assert not [b for b in bob.button if b.key == "tr_use"] and anns.id not in " ".join(m.value for m in bob.sidebar.markdown)
    assert "Other visitors' runs on this server (1 training or waiting)" in bob.expander[-1].label  # theirs, on request
    set_form(bob, episodes=30)
    bob.button(key="tr_start").click().run()
    bobs = get_run(bob.session_state["ms_run_id"])
    assert bobs is not anns and bobs.snapshot().status == "queued" and REGISTRY.waiting() == [bobs]
    assert "Your run is waiting: 1 of 1 in the queue" in bob.info[-1].value and "METASCOPE_MAX_TRAINING" in bob.info[-1].value
    assert bob.button(key="tr_start").disabled
    bob.switch_page(page_path("runs.py")).run()
    assert bob.dataframe[0].value["run"].tolist() == [bobs.id]  # his own run; ann's on request
    bob.toggle(key="rn_others").set_value(True).run()
    assert set(bob.dataframe[0].value["run"]) == {bobs.id, anns.id}
    anns.stop()  # ann's slot frees: bob's run starts by itself
    assert anns.join(JOIN_S) and bobs.join(JOIN_S) and bobs.snapshot().status == "finished"


def test_a_finished_run_becomes_the_current_learner_unless_another_was_chosen(open_app, folder_choice, runs_dir: Path):
    at = open_app("train", ms_data=folder_choice)
    set_form(at, episodes=20, n_way=5, q_query=5)
    at.button(key="tr_start").click().run()
    run = get_run(at.session_state["ms_run_id"])
    assert run.join(JOIN_S)
    at.run()  # the page that polled it redraws once it ends
    assert at.session_state["ms_learner"] == LearnerRef(run.snapshot().run_dir, None, "protonet")
    assert "This is the current learner" in " ".join(c.value for c in at.caption)
    assert run.id in " ".join(m.value for m in at.sidebar.markdown)
    at.switch_page(page_path("embeddings.py")).run()
    assert at.selectbox(key="em_learner").value == LearnerRef(run.snapshot().run_dir, None, "protonet")  # said, and switchable

    other = open_app("train", ms_data=folder_choice, ms_runs_dir=str(runs_dir))
    set_form(other, episodes=20, n_way=5, q_query=5)
    other.button(key="tr_start").click().run()
    second = get_run(other.session_state["ms_run_id"])
    chosen = next(r for r in RunStore(runs_dir).runs() if r.config().learner.method == "pixel_nn")
    other.switch_page(page_path("runs.py")).run()
    other.selectbox(key="rn_pick").set_value(chosen.id).run()
    other.button(key="rn_use").click().run()  # the visitor picks another learner while the run trains
    assert second.join(JOIN_S)
    other.switch_page(page_path("train.py")).run()
    assert other.session_state["ms_learner"].run_dir == str(chosen.path)  # their choice stands
    assert other.button(key="tr_use").label == "Use this learner"


def test_choosing_a_learner_sets_the_shape_it_trains_with_and_says_why(open_app, folder_choice):
    at = open_app("train", ms_data=folder_choice)
    shape = lambda: tuple(at.number_input(key=f"tr_{k}").value for k in ("n_way", "k_shot", "q_query"))  # noqa: E731
    assert shape() == (30, 1, 5)  # ProtoNet's recipe: more ways in training than in testing
    assert (
        "Metric learners train on harder episodes than they are tested on (30-way here, 5-way on the Episodes page)" in at.caption[1].value
    )
    at.selectbox(key="tr_method").set_value("maml").run()
    assert shape() == (5, 1, 15) and at.number_input(key="tr_meta_batch").value == 4
    assert "the MAML family and model-based learners train on episodes shaped like the test ones" in at.caption[1].value
    at.selectbox(key="tr_method").set_value("finetune").run()  # no recipe of its own: its family's
    assert shape() == (5, 1, 15)


def test_a_recipe_trains_at_its_image_size_and_the_pages_follow_the_run_once_it_is_the_current_learner(open_app, folder_choice):
    at = open_app("train", ms_data=folder_choice)
    at.selectbox(key="tr_recipe").set_value("lake").run()
    assert not at.exception, at.exception
    assert at.session_state["ms_data"] == folder_choice  # a recipe alone changes no page: they show the current learner's images
    assert "**folder**, 42 px images" in at.caption[0].value and at.number_input(key="tr_episodes").value == 2500
    assert run_config(at.session_state["ms_train_form"], folder_choice).train.image_size == 42
    at.selectbox(key="tr_recipe").set_value("protonet").run()  # a recipe naming no size: the session's
    assert "**folder**, 28 px images" in at.caption[0].value
    assert any("**Dataset** folder · 28 px" in m.value for m in at.sidebar.markdown)

    at.selectbox(key="tr_recipe").set_value("lake").run()
    set_form(at, episodes=10, n_way=5, q_query=5)
    at.button(key="tr_start").click().run()
    run = get_run(at.session_state["ms_run_id"])
    assert run.join(JOIN_S) and run.snapshot().status == "finished" and run.config.train.image_size == 42
    at.run()  # the run is now the current learner: the pages take its image size
    assert at.session_state["ms_data"] == DataChoice(folder_choice.dataset, folder_choice.data_dir, 42)
    assert any("**Dataset** folder · 42 px" in m.value for m in at.sidebar.markdown)  # said where every page shows it
    at.switch_page(page_path("embeddings.py")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.selectbox(key="em_learner").set_value(LearnerRef()).run()  # an untrained learner is built for the session's size
    at.selectbox(key="em_learner").set_value(LearnerRef(run.snapshot().run_dir, None, "protonet")).run()
    assert not at.exception and not at.error and at.session_state["ms_data"].image_size == 42


def test_a_failed_run_shows_its_error_and_the_page_keeps_working(open_app, tiny_config, tmp_path: Path):
    missing = DataChoice("folder", str(tmp_path / "gone"))
    run = start_run(tiny_config(missing), tmp_path / "runs", owner="visitor-1")
    assert run.join(JOIN_S) and run.snapshot().status == "failed"
    at = open_app("train", ms_data=missing, ms_visitor="visitor-1")
    assert not at.exception
    assert "The run failed" in at.error[0].value and "does not exist" in at.error[0].value
    assert not at.button(key="tr_start").disabled


# --- Runs ----------------------------------------------------------------------------------------


def damage(runs_dir: Path) -> tuple[str, str]:
    """Add a run with a broken config.json and one whose checkpoint is a foreign safetensors file."""
    good = sorted(p for p in runs_dir.iterdir())[0]
    broken = runs_dir / "zz-broken-config"
    shutil.copytree(good, broken)
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    foreign = runs_dir / "zz-foreign-checkpoint"
    shutil.copytree(good, foreign)
    for checkpoint in (foreign / "checkpoints").glob("*.safetensors"):
        save_file({"weight": torch.zeros(3)}, str(checkpoint))
    return broken.name, foreign.name


def test_runs_table_lists_runs_and_flags_damaged_folders(open_app, runs_dir: Path, monkeypatch):
    monkeypatch.setenv("METASCOPE_ALLOW_DELETE", "1")
    broken, foreign = damage(runs_dir)
    at = open_app("runs", ms_runs_dir=str(runs_dir))
    assert not at.exception
    table = at.dataframe[0].value.set_index("run")
    assert len(table) == 4
    assert "damaged or not a MetaScope config" in table.loc[broken, "problem"]
    assert "not a MetaScope checkpoint" in table.loc[foreign, "problem"]
    assert (table.drop([broken, foreign])["problem"] == "").all()
    assert set(table.drop([broken, foreign])["method"]) == {"protonet", "pixel_nn"}
    at.selectbox(key="rn_pick").set_value(broken).run()
    assert not at.exception and "you can delete it below" in at.error[0].value


def test_load_a_run_as_the_current_learner_and_refuse_a_foreign_checkpoint(open_app, runs_dir: Path):
    good = next(r for r in RunStore(runs_dir).runs() if r.config().learner.method == "protonet")
    _, foreign = damage(runs_dir)
    at = open_app("runs", ms_runs_dir=str(runs_dir))
    at.selectbox(key="rn_pick").set_value(foreign).run()
    at.button(key="rn_use").click().run()
    assert "not a MetaScope checkpoint" in at.error[0].value and at.session_state["ms_learner"] == LearnerRef()
    at.selectbox(key="rn_pick").set_value(good.id).run()
    at.button(key="rn_use").click().run()
    assert at.session_state["ms_learner"] == LearnerRef(str(good.path), None, "protonet")
    assert f"**Learner** {good.id} · step 30 (protonet, trained)" in " ".join(m.value for m in at.sidebar.markdown)


def test_evaluate_shows_accuracy_with_ci_and_a_per_class_table(open_app, runs_dir: Path):
    at = open_app("runs", ms_runs_dir=str(runs_dir))
    protonet = next(r.id for r in RunStore(runs_dir).runs() if r.config().learner.method == "protonet")
    at.selectbox(key="rn_pick").set_value(protonet).run()
    at.number_input(key="rn_eval_q").set_value(5)
    at.number_input(key="rn_eval_episodes").set_value(50)
    at.button(key="rn_eval").click().run()
    assert not at.exception and not at.error
    accuracy = metrics(at)["Test accuracy"]
    value, ci = accuracy.rstrip().split("% ± ")
    assert 20 < float(value) <= 100 and 0 <= float(ci) < 20
    table = next(d.value for d in at.dataframe if "precision" in d.value.columns)
    assert list(table.columns) == ["class", "precision", "recall", "F1"] and len(table) == 5  # the 5 test classes
    assert at.status[0].proto.label.startswith("Evaluated on ") and at.status[0].proto.label.endswith(" accuracy")
    at.number_input(key="rn_eval_n").set_value(9)
    at.button(key="rn_eval").click().run()
    assert "9 classes per episode, but this split has only 5" in at.error[0].value and not at.exception


def test_lake_test_is_drawn_against_the_published_errors_where_it_is_stored(open_app, runs_dir: Path):
    by_method = {r.config().learner.method: r for r in RunStore(runs_dir).runs()}
    wrong = torch.zeros(40, 20)
    wrong[::4, :3] = 1  # 3 of 20 queries wrong in every fourth episode: 3.75% error
    store_result(by_method["protonet"], lake_result(wrong, ["Sanskrit"] * 40), "test", LakeOptions(), 30, seed=0)
    at = open_app("runs", ms_runs_dir=str(runs_dir))
    at.selectbox(key="rn_pick").set_value(by_method["protonet"].id).run()
    assert not at.exception
    fig = figure(at, "rn_lake_chart")
    run = next(t for t in fig["data"] if t["name"] == "this run (± 95% CI)")
    assert run["y"] == [pytest.approx(3.75)] and run["error_y"]["array"][0] > 0
    assert "people 4.5% — 40 people, no background training" in trace_names(fig)
    assert "deep convnet (minimal) 24% — background set small1 (5 alphabets)" in trace_names(fig)
    at.selectbox(key="rn_pick").set_value(by_method["pixel_nn"].id).run()  # a folder of images: no alphabets, no drawers
    assert not at.exception and not any("rn_lake_chart" in c.proto.id for c in at.get("plotly_chart"))
    assert any("needs each character's alphabet and each image's drawer, which only Omniglot records" in i.value for i in at.info)


def test_lake_button_evaluates_an_omniglot_run_and_keeps_the_result(open_app, omniglot_dir: Path, tmp_path: Path):
    config = RunConfig.from_flat({"dataset": "omniglot", "data_dir": str(omniglot_dir), "n_way": 5, "q_query": 2, "episodes": 2})
    run = RunStore(tmp_path / "runs").create(config)
    assert train_run(config, run) == "finished"
    at = open_app("runs")
    at.number_input(key="rn_lake_episodes").set_value(20)
    at.button(key="rn_lake").click().run()
    assert not at.exception and not at.error
    (kept,) = stored_results(run)
    assert kept["episodes"] == 20 and kept["n_way"] == 20 and kept["file"] == "eval-lake-test.json"
    drawn = next(t for t in figure(at, "rn_lake_chart")["data"] if t["name"] == "this run (± 95% CI)")
    assert drawn["y"] == [pytest.approx(kept["error"])]
    # the chosen inductive test-time setting: kept beside the plain figure, under its own name and label
    assert at.selectbox(key="rn_lake_preset").options == [
        "plain (inductive, as published)", "32 distorted copies, aligned (inductive)", "32 copies, aligned, balanced (transductive)",
    ]  # fmt: skip
    at.selectbox(key="rn_lake_preset").set_value("copies, aligned").run()
    at.button(key="rn_lake").click().run()
    assert not at.exception and not at.error
    by_file = {r["file"]: r for r in stored_results(run)}
    assert set(by_file) == {"eval-lake-test.json", "eval-lake-test-tta32x1.5-align.json"}
    aligned = by_file["eval-lake-test-tta32x1.5-align.json"]
    assert aligned["options"]["align"] and aligned["options"]["tta"] == 32 and aligned["episodes"] == 20
    drawn = next(t for t in figure(at, "rn_lake_chart")["data"] if t["name"] == "this run (± 95% CI)")
    assert sorted(drawn["y"]) == pytest.approx(sorted([kept["error"], aligned["error"]]))
    ticks = figure(at, "rn_lake_chart")["layout"]["xaxis"]["ticktext"]
    assert any("inductive: TTA ×32 at strength 1.5, aligned" in t for t in ticks), ticks


def test_lake_test_time_copies_are_offered_only_to_learners_that_embed_each_image(open_app, omniglot_dir: Path, tmp_path: Path):
    flat = {"dataset": "omniglot", "data_dir": str(omniglot_dir), "method": "fomaml", "n_way": 5, "q_query": 2, "episodes": 2}
    config = RunConfig.from_flat({**flat, "inner_steps": 1})
    run = RunStore(tmp_path / "runs").create(config)
    assert train_run(config, run) == "finished"
    at = open_app("runs")
    assert at.selectbox(key="rn_lake_preset").options == ["plain (inductive, as published)"]
    at.number_input(key="rn_lake_episodes").set_value(10)
    at.button(key="rn_lake").click().run()
    assert not at.exception and not at.error
    assert [r["file"] for r in stored_results(run)] == ["eval-lake-test.json"]


def test_compare_runs_overlays_their_curves(open_app, runs_dir: Path):
    at = open_app("runs", ms_runs_dir=str(runs_dir))
    ids = [r.id for r in RunStore(runs_dir).runs()]
    at.multiselect(key="rn_compare").set_value(ids).run()
    at.radio(key="rn_metric").set_value("val_acc").run()
    fig = figure(at, "rn_compare_chart")
    assert trace_names(fig) == ids and fig["layout"]["title"]["text"] == "validation accuracy"
    assert all(len(t["x"]) == 3 for t in fig["data"])  # validated at episodes 10, 20, 30


def test_download_and_delete_with_confirmation(open_app, runs_dir: Path, monkeypatch):
    monkeypatch.setenv("METASCOPE_ALLOW_DELETE", "1")  # the operator's setting; off by default (tests/reliability)
    at = open_app("runs", ms_runs_dir=str(runs_dir))
    first = at.selectbox(key="rn_pick").value
    assert at.get("download_button")[0].proto.label == "Download metrics (CSV)"
    assert at.button(key="rn_delete").disabled
    at.checkbox(key=f"rn_confirm_{first}").check().run()
    at.button(key="rn_delete").click().run()
    assert not at.exception and not (runs_dir / first).exists()
    assert first not in at.dataframe[0].value["run"].tolist()


def test_no_runs_says_where_it_looked(open_app, tmp_path: Path):
    at = open_app("runs", ms_runs_dir=str(tmp_path / "empty"))
    assert "No saved runs" in at.info[0].value and "empty" in at.info[0].value
