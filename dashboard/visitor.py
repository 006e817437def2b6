"""Who is looking: a visitor id per browser, kept in a cookie, so that each visitor has their own runs.

Why a cookie: what a user expects is that a refresh, or a second tab of the same browser, is still them
(their run, still training, is found again), while another browser (another student in the class) is
someone else. A Streamlit session ends with each refresh, so the id lives in the browser: in a cookie,
not in the address, because the address is what people share (a lesson's link must not make the student
the teacher). A browser that refuses cookies gets a new id per session: its runs are then its own
until it reloads the page, and listed among "other visitors' runs" after that.
"""

from __future__ import annotations

import re
import uuid

import streamlit as st

from dashboard import state

COOKIE = "metascope_visitor"
_ID = re.compile(r"[0-9a-f]{32}")
_YEAR_S = 365 * 24 * 3600

_JS = r"""
export default function (component) {
  const { name, value, max_age } = component.data;
  document.cookie = `${name}=${value}; path=/; max-age=${max_age}; SameSite=Lax`;
}
"""

_component = st.components.v2.component("metascope_visitor_cookie", js=_JS)


def _cookie() -> str | None:
    value = st.context.cookies.get(COOKIE)
    return value if isinstance(value, str) and _ID.fullmatch(value) else None  # (AppTest's context has no real cookies)


def visitor_id() -> str:
    """This visitor's id: the session's, else the browser's cookie, else a new one (stable across reruns)."""
    current = state.visitor()
    if current is None:
        current = _cookie() or uuid.uuid4().hex
        state.set_visitor(current)
    return current


def remember_visitor() -> None:
    """Have the browser keep the id (a cookie for a year) unless it sent it with this session already."""
    if _cookie() != visitor_id():
        _component(data={"name": COOKIE, "value": visitor_id(), "max_age": _YEAR_S}, key="ms_visitor_cookie")
