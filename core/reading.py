"""Reading files that a user, another process or a crash may have left in any state.

A path that should hold a small regular file may hold a directory, a FIFO (opening it for reading would
wait for a writer forever), a device, a sparse file of gigabytes, or bytes that are not UTF-8. These
functions refuse all of that with an OSError or ValueError whose message says which, before reading more
than the limit.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MAX_JSON_BYTES = 16 << 20  # config.json, run.json and the figures files are a few KB
MAX_METRICS_BYTES = 256 << 20  # a million records


def open_regular(path: str | Path) -> int:
    """A read-only descriptor of the regular file at `path` (the caller closes it); OSError for anything else.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; it is then refused.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) else "not a regular file"
        raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL, f"{path} is {kind}")
    return fd


def is_regular_file(path: str | Path) -> bool:
    """Whether `path` is a regular file (symbolic links followed), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_bytes(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file `path`; OSError when it is not one or holds more than `limit` bytes."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(fd).st_size
        if size > limit:
            raise OSError(errno.EFBIG, f"{path} holds {size:,} bytes, more than the {limit:,} such a file may hold")
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise OSError(errno.EFBIG, f"{path} holds more than the {limit:,} bytes such a file may hold")
    return data


def read_text(path: str | Path, limit: int = MAX_JSON_BYTES) -> str:
    """The UTF-8 text of the regular file `path`; OSError (see read_bytes) or UnicodeDecodeError."""
    return read_bytes(path, limit).decode("utf-8")
