"""The dashboard in both languages: every text the code shows through tr() or N_() has its Chinese, with the same
{placeholders}; nothing in the table is unused; tr() is never handed a finished f-string; every page draws in Chinese
and takes changes to its translated boxes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.recipes import RECIPES
from dashboard.i18n import current_lang, fields, speaking, tr
from dashboard.labels import LABELS
from dashboard.zh import ZH
from tests.dashboard.test_pages_embeddings_distances import run_ref

ROOT = Path(__file__).resolve().parents[2]
MARKERS = ("tr", "N_")


def sources() -> list[Path]:
    return sorted([*(ROOT / "dashboard").rglob("*.py"), *(ROOT / "pages").glob("*.py")])


def marked_texts() -> tuple[dict[str, str], list[str]]:
    """(text -> where, for every literal given to tr() or N_(); the places where tr() gets an f-string or a sum)."""
    texts, bad = {}, []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS and node.args:
                first, where = node.args[0], f"{path.relative_to(ROOT)}:{node.lineno}"
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    texts.setdefault(first.value, where)
                elif isinstance(first, (ast.JoinedStr, ast.BinOp)):
                    bad.append(where)
    return texts, bad


def shown_from_elsewhere() -> set[str]:
    """Texts the dashboard shows through tr() that are kept outside tr()/N_() calls: setting labels and recipe summaries."""
    return set(LABELS.values()) | {r.summary for r in RECIPES.values()}


def test_every_text_shown_has_its_chinese():
    texts, _ = marked_texts()
    missing = {text: where for text, where in texts.items() if text not in ZH}
    missing |= {text: "labels or recipes" for text in shown_from_elsewhere() if text not in ZH}
    assert not missing, "\n".join(f"{where}: {text!r}" for text, where in sorted(missing.items(), key=lambda kv: kv[1]))


def test_translations_keep_the_placeholders_and_nothing_is_unused():
    texts, _ = marked_texts()
    assert [k for k, v in ZH.items() if fields(k) != fields(v) or not v.strip()] == []
    assert sorted(set(ZH) - set(texts) - shown_from_elsewhere()) == []


def test_tr_is_given_the_english_text_itself():
    assert marked_texts()[1] == []  # tr(f"...") could never be found in the table


@pytest.mark.parametrize("page", ["home", "episodes", "train", "embeddings", "distances", "compare", "tasks", "runs", "learn"])
def test_every_page_draws_in_chinese(open_app, page):
    at = open_app(page, ms_lang="zh")
    assert not at.exception
    chinese = lambda text: any("\u4e00" <= ch <= "\u9fff" for ch in text)  # noqa: E731
    if page != "home":  # Home's title is the product's name
        assert chinese(at.title[0].value), at.title[0].value
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "**数据集**" in sidebar and "**学习器**" in sidebar
    assert at.sidebar.radio(key="ln_lang").value == "zh"


def test_a_chinese_page_takes_changes_to_boxes_whose_labels_are_translated(open_app, folder_choice, runs_dir):
    at = open_app("tasks", ms_data=folder_choice, ms_learner=run_ref(runs_dir), ms_lang="zh")
    at.selectbox(key="ta_library").set_value("classes").run()  # the learner box and this one send translated labels
    assert not at.exception, at.exception
    assert at.selectbox(key="ta_library").value == "classes" and at.selectbox(key="ta_learner").value == run_ref(runs_dir)
    with speaking("zh"):
        assert tr("Learner") in at.selectbox(key="ta_learner").label


def test_speaking_sets_the_language_of_texts_made_inside_and_refuses_unknown_ones():
    assert current_lang() == "en" and tr("Learner") == "Learner"  # bare Python: English
    with speaking("zh"):
        assert tr("Learner") == ZH["Learner"] and current_lang() == "zh"
    assert tr("Learner") == "Learner"
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        with speaking("fr"):
            pass


def test_switching_the_language_sends_the_chosen_options_again_in_the_new_language(open_app, folder_choice, runs_dir):
    # a keyed box keeps its identity across the switch; unless its value is sent again the browser keeps showing the
    # English label it holds (seen on this page in the browser)
    at = open_app("tasks", ms_data=folder_choice, ms_learner=run_ref(runs_dir))
    at.selectbox(key="ta_library").set_value("classes").run()
    at.sidebar.radio(key="ln_lang").set_value("zh").run()
    assert not at.exception, at.exception
    for key in ("ta_library", "ta_embedding"):
        box = at.selectbox(key=key)
        assert box.proto.set_value, f"{key} was not sent again"
        shown = box.proto.raw_value
        assert shown in box.proto.options and any("\u4e00" <= ch <= "\u9fff" for ch in shown), shown
    assert at.selectbox(key="ta_library").value == "classes"  # the user's choice survives the switch
