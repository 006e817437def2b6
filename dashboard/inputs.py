"""Widgets whose values outlive their page: Streamlit drops a widget's value when its page is left."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import streamlit as st


def keyed(key: str, default: Any) -> str:
    """Widget key seeded from plain state: widget values vanish when a page is left, state does not."""
    if key not in st.session_state:
        st.session_state[key] = default
    return key


def listing_key(prefix: str, listed: Iterable[int]) -> str:
    """A widget key naming what a box lists (e.g. the points or classes behind its options).

    A select box whose option values repeat from one view to the next (row numbers, slot names) keeps the old
    labels in the browser under one key; a key per listing makes each listing a box of its own."""
    return f"{prefix}_{zlib.crc32(','.join(str(int(v)) for v in listed).encode()):08x}"


def nudge(key: str, delta: int) -> None:
    """on_click callback: add `delta` to an int widget's value (runs before the widget is drawn)."""
    st.session_state[key] = int(st.session_state.get(key, 0)) + delta
