"""`python -m dashboard [streamlit options]`: `streamlit run dashboard/app.py` with glibc's malloc arenas capped.

glibc gives threads their own malloc arenas, up to 8 per core, and each keeps the memory freed in it:
the server's threads, a training run and the projections then hold far more than they use. The cap has
to be set before any thread starts, which a page script cannot do. MALLOC_ARENA_MAX set by the user wins.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")
M_ARENA_MAX = -8  # malloc.h


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas; False where there is no glibc or the user chose MALLOC_ARENA_MAX."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> None:
    limit_malloc_arenas()
    from streamlit.web import cli

    cli.main(["run", str(APP), *(sys.argv[1:] if argv is None else argv)], prog_name="streamlit")


if __name__ == "__main__":
    main()
