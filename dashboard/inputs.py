"""Widgets whose values outlive their page: Streamlit drops a widget's value when its page is left."""

from __future__ import annotations

from typing import Any

import streamlit as st


def keyed(key: str, default: Any) -> str:
    """Widget key seeded from plain state: widget values vanish when a page is left, state does not."""
    if key not in st.session_state:
        st.session_state[key] = default
    return key


def nudge(key: str, delta: int) -> None:
    """on_click callback: add `delta` to an int widget's value (runs before the widget is drawn)."""
    st.session_state[key] = int(st.session_state.get(key, 0)) + delta
