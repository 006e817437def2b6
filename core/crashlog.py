"""Where an unexpected error's full traceback goes: a log file that the one-line message names.

A user sees one line; whoever debugs it finds the traceback in $METASCOPE_LOGS, else the logs folder of
the MetaScope cache ($METASCOPE_CACHE or ~/.cache/metascope), else the system's temporary folder.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

LOGS_ENV = "METASCOPE_LOGS"


def log_folders() -> list[Path]:
    """Where logs go, the first writable one winning."""
    cache = Path(os.environ.get("METASCOPE_CACHE", Path.home() / ".cache" / "metascope"))
    first = [Path(os.environ[LOGS_ENV])] if os.environ.get(LOGS_ENV) else []
    return [*first, cache / "logs", Path(tempfile.gettempdir()) / "metascope-logs"]


def log_traceback(exc: BaseException, context: str = "") -> Path | None:
    """Write `exc`'s traceback (and `context`: the command, the page) to a new log file -> its path, None if no folder took it."""
    text = f"{time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()} {context}\n" + "".join(traceback.format_exception(exc))
    for folder in log_folders():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), suffix=".log", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(text)
            return Path(name)
        except OSError:
            continue
    return None
