"""Problems the user can fix, shown on the page in its own words; the page goes on or stops as asked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.atomic import StorageError
from core.errors import UserError
from dashboard.i18n import tr
from dashboard.labels import LABELS, label

USER_ERRORS = (UserError, StorageError)


def ui_message(error: BaseException | str) -> str:
    """The engine's message (English: core words it for every caller), with the label of the setting it concerns
    in the session's language ("… (see “Learning rate”)")."""
    setting = getattr(error, "setting", None)
    text = str(error)
    return tr("{message} (see “{label}”)", message=text, label=label(setting)) if setting in LABELS else text


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
