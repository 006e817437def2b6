"""The dashboard in both languages: every text the code shows through tr() or N_() has its Chinese, with the same
{placeholders}; nothing in the table is unused; tr() is never handed a finished f-string; every page draws in Chinese."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.recipes import RECIPES
from dashboard.i18n import fields
from dashboard.labels import LABELS
from dashboard.zh import ZH

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
