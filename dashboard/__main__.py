"""`python -m dashboard [streamlit options]`: `streamlit run dashboard/app.py` with glibc's malloc set for training.

The server's threads would each get a malloc arena of their own, keeping what was freed in it, and a run trained
in one of them would map and unmap its blocks every step; both settings (core/allocator.py) must be made before
any thread starts, which a page script cannot do.

The server listens on 127.0.0.1 (.streamlit/config.toml); `--server.address 0.0.0.0` serves a class on the
network, and a warning says what that opens.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from core.allocator import keep_freed_memory, limit_arenas

APP = Path(__file__).with_name("app.py")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def served_address(argv: list[str], env: dict[str, str]) -> str:
    """The address the server will listen on: --server.address, else $STREAMLIT_SERVER_ADDRESS, else the config's loopback."""
    for i, arg in enumerate(argv):
        if arg == "--server.address" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--server.address="):
            return arg.split("=", 1)[1]
    return env.get("STREAMLIT_SERVER_ADDRESS", "127.0.0.1")


def network_warning(address: str) -> str | None:
    """What serving beyond this machine opens, or None for a loopback address."""
    if address in LOOPBACK or address.startswith("127."):
        return None
    return (
        f"warning: MetaScope listens on {address or 'every interface'}: anyone who can reach this machine can open the "
        "dashboard, train on it and read the data under its data roots ($METASCOPE_DATA_ROOTS, the cache, $METASCOPE_OMNIGLOT); "
        "deleting runs stays off unless $METASCOPE_ALLOW_DELETE=1"
    )


def main(argv: list[str] | None = None) -> None:
    limit_arenas()
    keep_freed_memory()
    args = sys.argv[1:] if argv is None else argv
    warning = network_warning(served_address(args, dict(os.environ)))
    if warning:
        print(warning, file=sys.stderr)
    from streamlit.web import cli

    cli.main(["run", str(APP), *args], prog_name="streamlit")


if __name__ == "__main__":
    main()
