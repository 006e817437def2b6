"""The engine imported in the background once the first page is drawn.

The Home page is drawn without torch (see dashboard/sidebar.py); the other pages need it. Importing
it (torch, the engine, plotly, pandas: about 1.5 s here) while the user reads Home means the first
click on another page does not wait for it.
"""

from __future__ import annotations

import importlib
import logging
import threading

MODULES = ("dashboard.widgets",)  # what every other page imports: torch, the engine, plotly, pandas, the loaders

_lock = threading.Lock()
_thread: threading.Thread | None = None
log = logging.getLogger(__name__)


def preload_engine(modules: tuple[str, ...] = MODULES) -> threading.Thread:
    """Start importing `modules` in a daemon thread, once per process; returns that thread."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_import, args=(modules,), name="metascope-preload", daemon=True)
            _thread.start()
        return _thread


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the page that needs it imports it again and shows the error
            log.exception("preloading %s failed", name)
