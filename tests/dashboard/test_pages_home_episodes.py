"""AppTest of the Home and Episodes pages: what they render and what their widgets do."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.episodes import EpisodeSpec
from dashboard.sidebar import page_path
from dashboard.state import DataChoice


def sidebar_text(at) -> str:
    return " ".join(m.value for m in at.sidebar.markdown)


def test_home_shows_dataset_learner_device_and_next_steps(open_app):
    at = open_app("home")
    assert at.title[0].value == "MetaScope"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dataset"] == "glyphs" and metrics["Learner"] == "untrained"
    assert metrics["Device"].startswith(("CPU", "CUDA"))
    assert "**Device**" in sidebar_text(at) and "**Learner** untrained (no run chosen" in sidebar_text(at)


def test_start_here_leads_to_every_page(open_app):
    at = open_app("home")
    linked = {link.proto.page.strip("/") for link in at.get("page_link")}
    pages = {p.stem for p in Path(page_path("home.py")).parent.glob("*.py")} - {"home"}
    assert linked == pages and {"tasks", "learn", "compare"} <= linked


def test_episodes_default_glyphs_draws_a_5_way_1_shot_episode(open_app):
    at = open_app("episodes")
    spec = at.session_state["ms_episode"]
    assert isinstance(spec, EpisodeSpec) and len(spec.class_ids) == 5
    assert all(len(s) == 1 for s in spec.support) and all(len(q) == 5 for q in spec.query)
    assert len(at.image) >= 10  # a support strip and a query strip per class
    assert "5-way 1-shot" in sidebar_text(at)


def test_episode_grid_rows_are_labelled_with_class_names(open_app, folder_choice):
    at = open_app("episodes", ms_data=folder_choice)
    spec = at.session_state["ms_episode"]
    labels = " ".join(m.value for m in at.markdown)
    for class_id in spec.class_ids:  # folder classes are named after their sub-folders, grouped by parent
        assert f"group{class_id // 5}/class{class_id // 5}{class_id % 5}" in labels


def test_changing_n_k_q_redraws_and_new_episode_moves_the_seed(open_app, folder_choice):
    at = open_app("episodes", ms_data=folder_choice)
    at.selectbox(key="ep_split").set_value("train").run()
    at.number_input(key="ep_n").set_value(4)
    at.number_input(key="ep_k").set_value(2)
    at.number_input(key="ep_q").set_value(3).run()
    first = at.session_state["ms_episode"]
    assert len(first.class_ids) == 4 and {len(s) for s in first.support} == {2} and {len(q) for q in first.query} == {3}
    at.button(key="ep_new").click().run()
    assert at.number_input(key="ep_seed").value == 1 and at.session_state["ms_episode_seed"] == 1
    assert at.session_state["ms_episode"] != first


def test_n_larger_than_the_split_says_what_to_change_and_keeps_the_episode(open_app, folder_choice):
    at = open_app("episodes", ms_data=folder_choice)
    before = at.session_state["ms_episode"]
    at.number_input(key="ep_n").set_value(9).run()  # the test split has 5 classes
    assert not at.exception
    assert "9 classes per episode, but this split has only 5; use at most 5" in at.error[0].value
    assert at.session_state["ms_episode"] == before and len(at.image) >= 10  # nothing lost
    at.number_input(key="ep_n").set_value(5)
    at.number_input(key="ep_q").set_value(25).run()  # classes have 20 images
    assert "1 support + 25 query images per class make 26, but the smallest class has 20 images" in at.error[0].value


def test_pick_classes_by_hand_with_the_group_filter(open_app, folder_choice):
    at = open_app("episodes", ms_data=folder_choice, ms_split="train")
    groups = at.selectbox(key="ep_group").options
    assert groups[0] == "all" and len(groups) == 3  # the train split holds two groups
    at.selectbox(key="ep_group").set_value(groups[1]).run()
    options = at.multiselect(key="ep_classes").options
    assert len(options) == 5 and all(o.startswith(f"{groups[1]}/") for o in options)
    at.multiselect(key="ep_classes").select(options[3]).select(options[0]).run()
    at.button(key="ep_use_classes").click().run()
    spec = at.session_state["ms_episode"]
    assert len(spec.class_ids) == 2
    assert [f"{groups[1]}/class{c // 5}{c % 5}" for c in spec.class_ids] == [options[3], options[0]]  # in the user's order


def test_swap_one_image_for_another_of_the_same_class(open_app, folder_choice):
    at = open_app("episodes", ms_data=folder_choice)
    spec = at.session_state["ms_episode"]
    next(s for s in at.selectbox if s.key.startswith("ep_slot_")).set_value("query:2:1").run()
    used = set(spec.support[2]) | set(spec.query[2])
    candidate = next(b.key for b in at.button if b.key and b.key.startswith("ep_swap_"))
    new_index = int(candidate.removeprefix("ep_swap_"))
    assert new_index not in used
    at.button(key=candidate).click().run()
    swapped = at.session_state["ms_episode"]
    assert swapped.query[2][1] == new_index
    assert swapped.support == spec.support and swapped.query[0] == spec.query[0]


def test_save_an_episode_by_name_and_make_it_current_again(open_app, folder_choice):
    at = open_app("episodes", ms_data=folder_choice)
    saved = at.session_state["ms_episode"]
    at.button(key="ep_save").click().run()
    assert "Type a name" in at.error[0].value
    at.text_input(key="ep_name").input("hard one")
    at.button(key="ep_save").click().run()
    assert at.session_state["ms_saved_episodes"] == {"hard one": saved}
    assert "hard one (5-way 1-shot)" in sidebar_text(at) and any("saved as “hard one”" in c.value for c in at.caption)
    at.button(key="ep_new").click().run()
    assert at.session_state["ms_episode"] != saved
    at.selectbox(key="ep_saved").set_value("hard one")
    at.button(key="ep_load").click().run()
    assert at.session_state["ms_episode"] == saved


def test_empty_or_missing_folder_gives_an_error_not_a_crash(open_app, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    at = open_app("episodes", ms_data=DataChoice("folder", str(empty)))
    assert not at.exception and at.error and str(empty) in at.error[0].value
    at = open_app("episodes", ms_data=DataChoice("folder", str(tmp_path / "nowhere")))
    assert not at.exception and "does not exist" in at.error[0].value
    assert "--data-dir" not in at.error[0].value and "Data folder" in at.error[0].value  # the page's words, not the CLI's


def test_a_saved_episode_is_used_from_any_page_through_the_sidebar(open_app, folder_choice):
    at = open_app("episodes", ms_data=folder_choice)
    saved = at.session_state["ms_episode"]
    at.text_input(key="ep_name").input("mine")
    at.button(key="ep_save").click().run()
    at.button(key="ep_new").click().run()
    assert at.session_state["ms_episode"] != saved
    at.switch_page(page_path("distances.py")).run()
    at.sidebar.selectbox(key="sb_episode").set_value("mine").run()
    assert not at.exception and at.session_state["ms_episode"] == saved
    assert "mine (5-way 1-shot)" in sidebar_text(at)
    at.session_state["ms_data"] = DataChoice()  # another dataset: its indices mean other images, so it is not offered
    at.switch_page(page_path("episodes.py")).run()
    assert not at.exception and not [w for w in at.sidebar.selectbox if w.key == "sb_episode"]
    assert any("1 saved episode of other datasets" in c.value for c in at.caption)


def test_folder_dataset_asks_for_its_path(open_app):
    at = open_app("episodes")
    at.selectbox(key="ep_dataset").set_value("folder").run()
    assert not at.exception and "Enter the data folder" in at.info[0].value
    assert at.text_input(key="ep_dir_folder").value == ""


def test_omniglot_defaults_to_its_env_folder_and_filters_by_alphabet(open_app, omniglot_dir, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("METASCOPE_OMNIGLOT", str(omniglot_dir))
    at = open_app("episodes")
    at.selectbox(key="ep_dataset").set_value("omniglot").run()
    assert at.text_input(key="ep_dir_omniglot").value == str(omniglot_dir)
    assert not at.exception and not at.error
    alphabets = at.selectbox(key="ep_group").options
    assert len(alphabets) > 1 and at.session_state["ms_data"] == DataChoice("omniglot", str(omniglot_dir))


def episode_controls(at) -> tuple:
    """What the controls say: split, N, K, Q, seed."""
    return (at.selectbox(key="ep_split").value, *(at.number_input(key=f"ep_{k}").value for k in ("n", "k", "q", "seed")))


def episode_shape(at) -> tuple:
    """What the episode on screen is: its split, N, K, Q and seed."""
    spec = at.session_state["ms_episode"]
    return (
        at.session_state["ms_split"],
        len(spec.class_ids),
        len(spec.support[0]),
        len(spec.query[0]),
        at.session_state["ms_episode_seed"],
    )


def test_switching_datasets_keeps_the_controls_on_the_episode_and_remembers_the_folder(open_app, image_folder):
    at = open_app("episodes")
    at.number_input(key="ep_seed").set_value(3).run()
    at.selectbox(key="ep_dataset").set_value("folder").run()  # no folder yet: the page asks for one
    assert "Enter the data folder" in at.info[0].value
    at.text_input(key="ep_dir_folder").input(str(image_folder)).run()
    assert not at.exception and not at.error
    assert episode_controls(at) == episode_shape(at) == ("test", 5, 1, 5, 3)
    assert "5-way 1-shot" in sidebar_text(at) and "folder" in sidebar_text(at)
    at.selectbox(key="ep_dataset").set_value("glyphs").run()
    at.selectbox(key="ep_dataset").set_value("folder").run()  # the second time, the folder is still there
    assert at.text_input(key="ep_dir_folder").value == str(image_folder) and not at.info
    assert episode_controls(at) == episode_shape(at) == ("test", 5, 1, 5, 3)
    at.number_input(key="ep_k").increment().run()  # the "+" of K: the episode shown, one more shot
    assert episode_controls(at) == episode_shape(at) == ("test", 5, 2, 5, 3)


def test_a_setting_that_does_not_fit_leaves_the_controls_on_the_episode_shown(open_app, folder_choice):
    at = open_app("episodes", ms_data=folder_choice)
    at.number_input(key="ep_n").set_value(9).run()  # the test split has 5 classes
    assert "use at most 5" in at.error[0].value
    assert episode_controls(at) == episode_shape(at) == ("test", 5, 1, 5, 0)


def test_classes_picked_by_hand_set_n_and_there_is_no_select_all(open_app, folder_choice):
    at = open_app("episodes", ms_data=folder_choice, ms_split="train")
    picker = at.multiselect(key="ep_classes")
    assert picker.proto.max_selections == 20
    assert picker.proto.select_all == 0  # Streamlit's "Select all" is off: no 10-way episode in one click
    picker.select(picker.options[0]).select(picker.options[4]).select(picker.options[7]).run()
    at.button(key="ep_use_classes").click().run()
    assert episode_controls(at) == episode_shape(at) == ("train", 3, 1, 5, 0)  # N follows the three picks
    picked = at.session_state["ms_episode"].class_ids
    at.number_input(key="ep_k").set_value(2).run()  # the picked classes stay while K changes
    assert at.session_state["ms_episode"].class_ids == picked and episode_shape(at)[:3] == ("train", 3, 2)
    at.number_input(key="ep_n").set_value(4).run()  # N no longer matches the picks: classes are drawn again
    assert episode_shape(at)[1] == 4 and at.session_state["ms_fixed_classes"] is None
