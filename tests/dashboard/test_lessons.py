"""AppTest of the Learn section: every lesson, its exercise check on the real numbers, links and languages."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import playground as pg
from core.config import EpisodeShape
from core.episodes import draw_spec
from core.store import RunStore
from dashboard import i18n, loaders
from dashboard.charts import lessons as charts
from dashboard.lessons import LESSONS, kit
from dashboard.lessons.maml import first_rise
from dashboard.lessons.matching_relation import compare, disagree
from dashboard.lessons.protonet import walkthrough
from dashboard.lessons.tasks import SETTINGS, map_tasks
from dashboard.share import encode_spec
from dashboard.state import DataChoice
from tests.dashboard.conftest import APP, page_file

# the MAML and task lessons compute for seconds on an idle CPU, and for minutes on an overloaded one
LESSON_TIMEOUT_S = 600
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def open_learn(tmp_path: Path):
    """open_learn({'lesson': 'metric', ...}, ms_data=...) -> AppTest on the Learn page, opened as from a link."""

    def open_page(query: dict[str, str] | None = None, runs: Path | None = None, **session: object) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=LESSON_TIMEOUT_S)
        at.session_state["ms_runs_dir"] = str(runs or tmp_path / "runs")
        for key, value in session.items():
            at.session_state[key] = value
        at.query_params.update(query or {})
        at.run()
        at.switch_page(page_file("learn")).run()
        assert not at.exception, at.exception
        return at

    return open_page


def successes(at: AppTest) -> list[str]:
    return [s.value for s in at.success]


def folder_query(choice: DataChoice, **values: str) -> dict[str, str]:
    return {"data": "folder", "dir": choice.data_dir, **values}


def test_a_fresh_start_opens_the_first_lesson_on_glyphs_and_writes_its_link(open_learn):
    at = open_learn()
    assert at.header[0].value == "1. Episodes"
    assert at.query_params == {"lesson": "episodes", "data": "glyphs", "seed": "0", "n": "5", "k": "1", "q": "5"}
    spec = at.session_state["ms_episode"]
    assert len(spec.class_ids) == 5 and len(at.image) >= 10
    link = at.code[0].value
    assert "lesson=episodes" in link and "seed=0" in link


@pytest.mark.parametrize("key", list(LESSONS))
def test_every_lesson_renders_with_an_exercise(open_learn, folder_choice, key):
    at = open_learn({"lesson": key}, ms_data=folder_choice)
    assert at.session_state["ms_lesson"] == key and at.query_params["lesson"] == key
    assert at.header[0].value.endswith(LESSONS[key].title())
    assert any("Try this" in m.value for m in at.markdown)
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("key", list(LESSONS))
def test_every_lesson_reads_in_chinese(open_learn, folder_choice, key):
    at = open_learn({"lesson": key, "lang": "zh"}, ms_data=folder_choice)
    assert at.header[0].value.endswith(i18n.text(f"{key}.title", "zh")) and CJK.search(at.header[0].value)
    texts = [m.value for m in at.markdown]
    assert any("动手试试" in t for t in texts) and not any("Try this" in t for t in texts)
    assert all(CJK.search(h.value) for h in at.subheader), [h.value for h in at.subheader]
    labels = [w.label for w in [*at.slider, *at.select_slider, *at.radio, *at.number_input, *at.selectbox, *at.checkbox]]
    assert all(CJK.search(label) for label in labels), labels
    assert not at.error, [e.value for e in at.error]


def test_episodes_exercise_checks_the_episode_and_the_count(open_learn, folder_choice):
    at = open_learn({"lesson": "episodes"}, ms_data=folder_choice)
    assert [m.value for m in at.metric][:2] == ["5", "25"]  # N·K support images, N·Q queries
    overlap = next(m for m in at.metric if m.label == "Classes shared by two splits")
    assert overlap.value == "0"
    at.number_input(key="ln_episodes_answer").set_value(18).run()
    assert not successes(at) and "5-way 1-shot" in " ".join(c.value for c in at.caption)
    at.number_input(key="ln_n").set_value(3)
    at.number_input(key="ln_k").set_value(2)
    at.number_input(key="ln_q").set_value(4).run()
    spec = at.session_state["ms_episode"]
    assert (len(spec.class_ids), len(spec.support[0]), len(spec.query[0])) == (3, 2, 4)
    assert at.query_params["n"] == "3" and at.query_params["k"] == "2" and at.query_params["q"] == "4"
    assert successes(at) and "= 18 images" in successes(at)[0]
    at.number_input(key="ln_episodes_answer").set_value(17).run()
    assert not successes(at)


def test_redraw_moves_the_seed_and_the_episode(open_learn, folder_choice):
    at = open_learn({"lesson": "episodes"}, ms_data=folder_choice)
    first = at.session_state["ms_episode"]
    at.button(key="ln_redraw").click().run()
    assert at.session_state["ms_episode_seed"] == 1 and at.session_state["ms_episode"] != first
    assert at.query_params["seed"] == "1"


def test_metric_step_trains_the_tiny_net_and_the_triplet_exercise_is_checked_on_the_real_loss(open_learn):
    at = open_learn({"lesson": "metric"})
    assert [latex.value.strip("$\n") for latex in at.latex][:2] == [
        r"L = y\,d + (1-y)\,\max(0,\; m - d)",
        r"L = \max\big(0,\; d(a,p) - d(a,n) + m\big)",
    ]
    at.button(key="ln_metric_step").click().run()
    assert at.session_state["ms_playground"][1].step == 1
    assert next(m for m in at.metric if m.label == "Step").value == "1"
    at.radio(key="ln_metric_loss").set_value("triplet")
    at.slider(key="ln_metric_margin").set_value(0.5)
    at.select_slider(key="ln_metric_lr").set_value(0.1)
    at.checkbox(key="ln_metric_normalize").check().run()
    assert at.query_params == {"lesson": "metric", "loss": "triplet", "margin": "0.5", "lr": "0.1", "normalize": "1"}
    assert not successes(at)
    for _ in range(3):
        at.button(key="ln_metric_forward").click().run()
    state = at.session_state["ms_playground"][1]
    assert state.step == 151
    assert successes(at) and "m = 0.5" in successes(at)[0]
    at.slider(key="ln_metric_margin").set_value(2.0).run()  # the same net, a margin the unit circle cannot meet
    assert not successes(at) and "still break the margin" in " ".join(c.value for c in at.caption)


def test_metric_play_animates_in_a_fragment_and_pause_stops(open_learn):
    at = open_learn({"lesson": "metric"})
    at.button(key="ln_metric_play").click().run()
    assert at.session_state["ms_playing"] is True
    assert at.session_state["ms_playground"][1].step > 0  # the fragment ran a frame during the rerun
    at.button(key="ln_metric_pause").click().run()
    assert at.session_state["ms_playing"] is False
    steps = at.session_state["ms_playground"][1].step
    at.run()
    assert at.session_state["ms_playground"][1].step == steps
    at.button(key="ln_metric_reset").click().run()
    assert at.session_state["ms_playground"][1].step == 0


def test_protonet_shows_the_engines_numbers_and_checks_every_query_right(open_learn, folder_choice):
    image_set = loaders.image_set(folder_choice)
    test_classes = loaders.class_split(folder_choice).test
    learner = kit.untrained("protonet", 1, 28)
    outcome = {}
    for seed in range(12):
        walk = walkthrough(learner, draw_spec(image_set, test_classes, EpisodeShape(3, 1, 2), seed).build(image_set))
        outcome[seed] = bool((walk.predicted == np.repeat(np.arange(3), 2)).all())
    at = open_learn(folder_query(folder_choice, lesson="protonet", n="3", k="1", q="2", seed="0"), ms_data=folder_choice)
    spec = at.session_state["ms_episode"]
    walk = walkthrough(learner, spec.build(image_set))
    table = at.dataframe[1].value
    assert np.allclose(table.to_numpy(), walk.distance, rtol=1e-4)
    assert f"{walk.loss:.4f}" in " ".join(m.value for m in at.markdown)
    assert (next(m for m in at.metric if m.label == "Queries right").value == "6 / 6") == outcome[0] == bool(successes(at))
    for seed in (s for s in outcome if s > 0 and outcome[s] != outcome[0]):
        at.number_input(key="ln_seed").set_value(seed).run()
        assert bool(successes(at)) == outcome[seed]
        break
    at.slider(key="ln_protonet_query").set_value(5).run()
    assert at.query_params["query"] == "5"


def test_matching_relation_exercise_is_the_relation_against_the_fixed_distance(open_learn, folder_choice):
    at = open_learn(folder_query(folder_choice, lesson="matching"), ms_data=folder_choice)
    image_set = loaders.image_set(folder_choice)
    episode = at.session_state["ms_episode"].build(image_set)
    result = compare(kit.untrained("matching", 1, 28), kit.untrained("relation", 1, 28), episode)
    assert np.allclose(result.attention.sum(1), 1, atol=1e-5) and result.attention.shape == (25, 5)
    for query in range(25):
        at.slider(key="ln_matching_query").set_value(query).run()
        assert bool(successes(at)) == disagree(result, query)
        if disagree(result, query):
            break
    assert any(disagree(result, q) for q in range(25)) == bool(successes(at))


def test_maml_exercise_reads_the_real_inner_loop(open_learn, folder_choice):
    at = open_learn(folder_query(folder_choice, lesson="maml", inner_lr="0.1", inner_steps="3", step="2"), ms_data=folder_choice)
    assert at.slider(key="ln_maml_step").value == 2 and at.slider(key="ln_maml_inner_steps").value == 3
    trace = at.dataframe[0].value
    assert list(trace.index) == [0, 1, 2, 3]
    falls = bool(np.all(np.diff(trace["query loss"].to_numpy()) < 0))
    assert bool(successes(at)) == falls
    cosine = float(next(m for m in at.metric if m.label.startswith("Cosine")).value)
    assert -1.0 <= cosine <= 1.0
    at.select_slider(key="ln_maml_inner_lr").set_value(3.0).run()
    trace = at.dataframe[0].value
    assert bool(successes(at)) == bool(np.all(np.diff(trace["query loss"].to_numpy()) < 0))
    assert first_rise([{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.7}]) == 2


def test_tasks_exercise_checks_the_nearest_stored_tasks(open_learn, folder_choice):
    at = open_learn(folder_query(folder_choice, lesson="tasks", k="3"), ms_data=folder_choice)
    image_set, split = loaders.image_set(folder_choice), loaders.class_split(folder_choice)
    result = map_tasks(kit.untrained("protonet", 1, 28), image_set, split, "prototypes", 3)
    tasks = SETTINGS.stored_tasks + SETTINGS.new_tasks  # the lesson's library and new tasks, one point each
    assert result.coords.shape == (tasks, 2) and result.neighbours.shape == (SETTINGS.new_tasks, 3)
    table = at.dataframe[0].value
    assert np.allclose(table["similarity"].to_numpy(), result.similarity[0], atol=1e-5)
    assert (table["classes in common"].to_numpy() == result.shared[0, result.neighbours[0]]).all()
    assert bool(successes(at)) == bool(result.related[0, result.neighbours[0]].all())


def test_a_link_with_hidden_controls_fixes_them_and_opens_in_chinese(open_learn):
    at = open_learn({"lesson": "metric", "loss": "triplet", "margin": "0.5", "hide": "margin,loss", "lang": "zh"})
    assert at.header[0].value == "2. 度量学习" and at.title[0].value == "学习"
    keys = {w.key for w in at.slider} | {w.key for w in at.radio}
    assert "ln_metric_margin" not in keys and "ln_metric_loss" not in keys
    assert at.select_slider(key="ln_metric_lr").value == 0.03  # not hidden: the student still sets it
    fixed = " ".join(m.value for m in at.markdown)
    assert "`0.5`" in fixed and "`triplet`" in fixed and "由链接固定" in fixed
    assert at.query_params == {"lesson": "metric", "lang": "zh", "loss": "triplet", "margin": "0.5", "hide": "loss,margin"}
    assert "hide=loss,margin" in at.code[0].value


def test_a_link_opens_the_same_episode_and_learner(open_learn, folder_choice, runs_dir):
    run = next(r for r in RunStore(runs_dir).runs() if r.config().learner.method == "protonet")
    query = folder_query(folder_choice, lesson="protonet", seed="4", n="3", k="2", q="2", query="4", learner=run.id)
    at = open_learn(query, runs=runs_dir)
    image_set = loaders.image_set(folder_choice)
    expected = draw_spec(image_set, loaders.class_split(folder_choice).test, EpisodeShape(3, 2, 2), 4)
    assert at.session_state["ms_episode"] == expected
    assert at.session_state["ms_learner"].run_dir == str(run.path)
    assert at.slider(key="ln_protonet_query").value == 4
    assert at.query_params == query
    assert any(run.id in c.value for c in at.caption)


def test_a_hand_made_episode_travels_as_ep_and_comes_back_exactly(open_learn, folder_choice):
    image_set = loaders.image_set(folder_choice)
    seeded = draw_spec(image_set, loaders.class_split(folder_choice).test, EpisodeShape(5, 1, 5), 0)
    spare = next(i for i in image_set.indices_of(seeded.class_ids[0]).tolist() if i not in seeded.support[0] + seeded.query[0])
    hand_made = seeded.with_image("support", 0, 0, spare)
    at = open_learn({"lesson": "episodes"}, ms_data=folder_choice, ms_episode=hand_made)
    assert at.query_params["ep"] == encode_spec(hand_made)
    again = open_learn(dict(at.query_params))
    assert again.session_state["ms_episode"] == hand_made and again.session_state["ms_data"] == folder_choice


def test_a_bad_link_warns_and_falls_back(open_learn):
    at = open_learn({"lesson": "metric", "margin": "lots", "colour": "red", "hide": "seed"})
    warnings = " ".join(w.value for w in at.warning)
    assert "margin: 'lots' is not a float" in warnings and "'colour' is not a setting" in warnings and "hide: seed" in warnings
    assert at.slider(key="ln_metric_margin").value == 1.0
    assert at.query_params == {"lesson": "metric"}  # the URL now holds what is on screen
    at.run()
    assert not at.warning  # said once, when the link was opened


def test_a_missing_run_in_a_link_falls_back_to_untrained(open_learn, folder_choice):
    at = open_learn(folder_query(folder_choice, lesson="protonet", learner="no-such-run"), ms_data=folder_choice)
    assert "no-such-run" in at.warning[0].value and at.session_state["ms_learner"].run_dir is None


def test_language_switch_translates_and_goes_into_the_link(open_learn):
    at = open_learn({"lesson": "episodes"})
    at.sidebar.radio(key="ln_lang").set_value("zh").run()
    assert at.title[0].value == "学习" and at.header[0].value == "1. Episode（小样本任务）"
    assert at.query_params["lang"] == "zh" and at.session_state["ms_lang"] == "zh"
    at.sidebar.radio(key="ln_lang").set_value("en").run()
    assert "lang" not in at.query_params


def test_picker_and_next_button_move_between_lessons_and_clear_hidden_controls(open_learn):
    at = open_learn({"lesson": "metric", "hide": "margin"})
    at.button(key="ln_next").click().run()
    assert at.session_state["ms_lesson"] == "protonet" and at.query_params["lesson"] == "protonet"
    assert at.session_state["ms_hidden_controls"] == frozenset()
    at.button_group(key="ln_lesson").set_value("metric").run()
    assert at.header[0].value == "2. Metric learning" and at.slider(key="ln_metric_margin").value == 1.0


def test_every_string_has_both_languages_with_the_same_placeholders():
    assert len(i18n.STRINGS) > 100
    for key, entry in i18n.STRINGS.items():
        assert entry["en"] and CJK.search(entry["zh"]) or entry["zh"] == entry["en"], key
        assert i18n.fields(entry["en"]) == i18n.fields(entry["zh"]), key


def test_lesson_figures_carry_the_readers_labels():
    points = pg.make_points("moons", per_class=5)
    net = pg.init_state()
    now = pg.view(net, points, pg.PlaygroundConfig())
    grid = pg.warp_grid(net.params).numpy()
    args = (points.x.numpy(), points.y.numpy(), now.z.numpy(), now.forces.numpy(), grid, 0, 1.0, ("输入", "嵌入"))
    fig = charts.playground(*args, legend=("类别 {label}", "锚点"))
    names = {t.name for t in fig.data if t.showlegend is not False}
    assert {"类别 0", "类别 1", "锚点"} <= names
    assert len([t for t in fig.data if t.line.color == charts.GRID_COLOR]) == len(grid)  # one trace per grid line
    assert [a.text for a in fig.layout.annotations] == ["输入", "嵌入"]
    curve = charts.loss_curve([3.0, 2.0, 1.0], "损失曲线", ("步数", "损失"))
    assert curve.layout.xaxis.title.text == "步数" and list(curve.data[0].y) == [3.0, 2.0, 1.0]
    inner = charts.inner_loop([0, 1], [2.0, 1.0], [1.5, 0.5], 1, ("支持集", "查询集"), "内循环", ("内循环步数", "损失"))
    assert inner.layout.xaxis.title.text == "内循环步数" and [t.name for t in inner.data] == ["支持集", "查询集"]
    z = np.arange(12, dtype=float).reshape(6, 2)
    episode = charts.episode_map(z[:2], np.array([0, 1]), z[2:4], z[4:], np.array([0, 1]), 1, ["a", "b"], "t", ("查询", "原型"))
    assert episode.data[-1].name == "查询" and any(t.hovertext == "原型 a" for t in episode.data)
