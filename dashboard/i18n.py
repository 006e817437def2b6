"""English and Simplified Chinese for the whole dashboard, the sidebar switch between them, and ?lang= in links.

Two ways in, one rule (every string in both languages, with the same {placeholders}, checked by tests):
- pages and views write English and wrap it: tr("Episodes"), tr("{n} classes", n=5); dashboard/zh.py maps
  each English text to its Chinese. English is the key, so the code reads as the page does, and a test
  finds every tr() / N_() text in the code and checks the table has it. N_() marks text kept in a
  constant (option labels) that is translated where it is shown, with tr(CONSTANT[key]).
- each lesson keeps its long texts beside its code, registered under a namespace (`register`), as before.
Messages from the engine (core) stay English: they are worded for the command line too.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import streamlit as st

from dashboard import state
from dashboard.zh import ZH

LANGUAGES = {"en": "English", "zh": "简体中文"}
STRINGS: dict[str, dict[str, str]] = {}  # "namespace.key" -> {"en": ..., "zh": ...}
_SPOKEN: ContextVar[str | None] = ContextVar("metascope_language", default=None)


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
    chosen = entry.get(lang or current_lang(), entry["en"])
    return chosen.format(**values) if values else chosen


def current_lang() -> str:
    """The language of `speaking(...)` around the call, else the session's; English outside a session (figure
    builders called from tests or scripts)."""
    spoken = _SPOKEN.get()
    if spoken is not None:
        return spoken
    try:
        return state.lang()
    except Exception:  # no Streamlit session: bare Python
        return "en"


@contextmanager
def speaking(lang: str) -> Iterator[None]:
    """Texts made inside are in `lang`, whatever the session's (a script drawing a Chinese figure; a widget's
    labels formatted outside its script run, as AppTest does when it sends widget values back)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    token = _SPOKEN.set(lang)
    try:
        yield
    finally:
        _SPOKEN.reset(token)


def tr(english: str, **values: object) -> str:
    """`english` in the session's language (dashboard/zh.py), formatted with `values`."""
    chosen = ZH.get(english, english) if current_lang() == "zh" else english
    return chosen.format(**values) if values else chosen


def N_(english: str) -> str:  # noqa: N802 - gettext's name for "marked for translation, translated where shown"
    """Marks text kept in a constant for the translation table; show it with tr()."""
    return english


def language_switch() -> None:
    """Sidebar control for the dashboard's language, kept in state (and in the address bar as ?lang=zh)."""
    st.session_state["ln_lang"] = state.lang()  # a link may have changed it since the widget was drawn
    st.sidebar.radio(
        "Language · 语言", list(LANGUAGES), format_func=LANGUAGES.get, key="ln_lang", horizontal=True,
        on_change=_switched,
    )  # fmt: skip


def _switched() -> None:
    """The language switch's callback: the new language, and every chosen value sent to the browser again.

    A keyed box keeps its identity when its option labels change, and the browser would go on showing the label it
    holds (the old language's) unless the value is sent again; assigning a widget's own value does that. Only widget values
    a user picks or types (text, numbers, lists of them) are sent: buttons and uploaders refuse assignment.
    """
    state.set_lang(st.session_state["ln_lang"])
    for key, value in list(st.session_state.items()):
        if key not in state.APP_KEYS and _resendable(value):
            st.session_state[key] = value


def _resendable(value: object) -> bool:
    plain = (str, int, float)
    if isinstance(value, bool):  # buttons and checkboxes: labels do not change with a value
        return False
    if isinstance(value, (list, tuple)):  # an empty list could be an uploader's
        return bool(value) and all(isinstance(v, plain) and not isinstance(v, bool) for v in value)
    return isinstance(value, plain)


def language_from_url() -> None:
    """On a session's first run, ?lang= of the address sets the language (a shared link in Chinese opens in Chinese)."""
    if state.lang_from_url():
        return
    state.set_lang_from_url(True)
    if (lang := st.query_params.get("lang")) in LANGUAGES:
        state.set_lang(lang)


def language_to_url() -> None:
    """Keep ?lang=zh in the address bar while the dashboard is in Chinese, so a copied link opens in Chinese."""
    if state.lang() == "en":
        if "lang" in st.query_params:
            del st.query_params["lang"]
    elif st.query_params.get("lang") != state.lang():
        st.query_params["lang"] = state.lang()
