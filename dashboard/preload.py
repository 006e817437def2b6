"""The engine imported in the background once the first page is drawn: the one place MetaScope defers an import.

Why: importing torch, the engine, plotly and pandas takes 1.5-3 s here, and the start goal is the first page
usable within 3 s of launching the server. So Home is drawn from modules that import no torch (dashboard/
sidebar.py, dashboard/state.py, core.config, core.training.registry; the package __init__ files import
nothing), and the engine is imported in a thread while the user reads it, so the first click on another
page does not wait for it. Measured with `python scripts/bench_dashboard.py --start-only` (README figures).
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading

MODULES = ("dashboard.loaders", "dashboard.run_panels", "dashboard.charts.training")  # what the other pages import

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


def engine_loaded() -> bool:
    """True once torch is imported (by the preload or by a page), so asking torch costs nothing."""
    return "torch" in sys.modules and (_thread is None or not _thread.is_alive())


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the page that needs it imports it again and shows the error
            log.exception("preloading %s failed", name)
