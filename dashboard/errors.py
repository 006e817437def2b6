"""Problems the user can fix, shown on the page in its own words; the page goes on or stops as asked.
A bug is shown as one line too: its traceback goes to the server's log, never to the visitor."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.atomic import StorageError
from core.crashlog import log_traceback
from core.errors import UserError, explain, one_line
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


def page_failed(error: Exception, page: str) -> None:
    """The error boundary of every page (dashboard/app.py): a user's problem in its words; a bug as one line naming
    the log file (on the server, with the traceback; also on the server's stderr), so a visitor sees no traceback."""
    known = explain(error)
    if known is not None or isinstance(error, StorageError):
        show_error(known or error)
        return
    log = log_traceback(error, f"dashboard page {page}")
    print(f"MetaScope: unexpected {type(error).__name__} on page {page}: {one_line(str(error))}; traceback in {log}", file=sys.stderr)
    reference = f" (reference {log.name})" if log else ""
    st.error(tr("Something went wrong on this page; it was logged on the server{reference}.", reference=reference), icon=":material/error:")
