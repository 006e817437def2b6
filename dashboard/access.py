"""What a visitor of the dashboard may reach: data folders under the roots its operator configured, and
deleting runs only where the operator allows it.

A visitor names folders in the Data folder box and in a shared link's dir=; without this check the server
would list any folder's sub-folders back to them and decode any images it finds. The roots, read per call:
the MetaScope cache (where the built-in data lives), $METASCOPE_OMNIGLOT, and the folders given at launch in
$METASCOPE_DATA_ROOTS (separated by ':'). A folder elsewhere is refused with the same words whether or not it
exists, so the refusal tells nothing about the disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import UserError

DATA_ROOTS_ENV = "METASCOPE_DATA_ROOTS"
ALLOW_DELETE_ENV = "METASCOPE_ALLOW_DELETE"
OMNIGLOT_ENV = "METASCOPE_OMNIGLOT"
REFUSED = (
    "this dashboard reads data only from the folders its operator set up; ask them to add yours "
    f"(start it with {DATA_ROOTS_ENV}=/path/to/data), or use the built-in glyphs"
)


def data_roots() -> list[Path]:
    """The folders a visitor's data folder must lie in (absolute, each also as its real path)."""
    from core.data.base import cache_dir  # imports torch: only when a folder is being checked, to be loaded next

    named = [str(cache_dir()), os.environ.get(OMNIGLOT_ENV, ""), *os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep)]
    roots = []
    for text in filter(None, (n.strip() for n in named)):
        root = Path(os.path.abspath(os.path.expanduser(text)))
        roots += [root, root.resolve()]
    return list(dict.fromkeys(roots))


def check_data_dir(text: str) -> str:
    """`text` as an absolute folder path when it lies in a data root; UserError (data_dir) otherwise.

    '..' is refused outright: after a symbolic link it would lead elsewhere than it reads.
    """
    if "\0" in text or ".." in Path(text).parts:
        raise UserError(REFUSED, "data_dir")
    path = Path(os.path.abspath(os.path.expanduser(text)))
    if not any(path == root or path.is_relative_to(root) for root in data_roots()):
        raise UserError(REFUSED, "data_dir")
    return str(path)


def deleting_allowed() -> bool:
    """Whether visitors may delete runs: only when the operator started the dashboard with METASCOPE_ALLOW_DELETE=1."""
    return os.environ.get(ALLOW_DELETE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
