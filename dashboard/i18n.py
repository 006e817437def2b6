"""English and Simplified Chinese text for the Learn section, and the sidebar switch between them.

Each lesson keeps its own strings beside its code, registered here under a namespace, so one
table (`STRINGS`) holds every string in both languages and a test can check that none is missing.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import streamlit as st

from dashboard import state

LANGUAGES = {"en": "English", "zh": "简体中文"}
STRINGS: dict[str, dict[str, str]] = {}  # "namespace.key" -> {"en": ..., "zh": ...}


def fields(text: str) -> set[str]:
    """The {placeholders} of a format string."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def register(namespace: str, table: dict[str, tuple[str, str]]) -> Callable[..., str]:
    """Add `table` (key -> (English, Chinese)) under `namespace`; returns tr(key, **values) for it.

    Both texts must be present and use the same {placeholders}: a translation cannot silently drop a number.
    """
    for key, (en, zh) in table.items():
        if not en or not zh or fields(en) != fields(zh):
            raise ValueError(f"{namespace}.{key}: give both texts with the same placeholders ({fields(en)} vs {fields(zh)})")
        STRINGS[f"{namespace}.{key}"] = {"en": en, "zh": zh}
    return lambda key, **values: text(f"{namespace}.{key}", **values)


def text(key: str, lang: str | None = None, **values: object) -> str:
    """The string `key` in `lang` (default: the session's language), formatted with `values`."""
    entry = STRINGS[key]
    chosen = entry.get(lang or state.lang(), entry["en"])
    return chosen.format(**values) if values else chosen


def language_switch() -> None:
    """Sidebar control for the lesson language, kept in state (the page writes it to the URL as lang=)."""
    if "ln_lang" not in st.session_state:  # absent on first use and after a link set the language
        st.session_state["ln_lang"] = state.lang()
    st.sidebar.radio(
        "Language · 语言", list(LANGUAGES), format_func=LANGUAGES.get, key="ln_lang", horizontal=True,
        on_change=lambda: state.set_lang(st.session_state["ln_lang"]),
    )  # fmt: skip
