"""Problems the user can fix, shown on the page in its own words; the page goes on or stops as asked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.atomic import StorageError
from core.errors import UserError
from dashboard.labels import LABELS

USER_ERRORS = (UserError, StorageError)


def ui_message(error: BaseException | str) -> str:
    """The engine's message, with the label of the setting it concerns ("… (Learning rate)")."""
    setting = getattr(error, "setting", None)
    text = str(error)
    return f"{text} (see “{LABELS[setting]}”)" if setting in LABELS else text


def show_error(error: BaseException | str) -> None:
    st.error(ui_message(error), icon=":material/error:")


@contextmanager
def reported(stop: bool = True) -> Iterator[None]:
    """Show a user error (bad setting, data, checkpoint, run, full disk) as st.error; st.stop() the page when `stop`.

    The rest of the block is skipped, so nothing half-done is stored; other exceptions are bugs and propagate.
    """
    try:
        yield
    except USER_ERRORS as exc:
        show_error(exc)
        if stop:
            st.stop()
