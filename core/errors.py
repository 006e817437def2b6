"""The errors a user can fix, for every caller: the command line and the dashboard word their own hints.

Messages speak of the things a user sets ("classes per episode", "the learning rate"), never of code
names; `setting` names the configuration field concerned, so the CLI can add its flag (`--n-way`) and
the dashboard its label ("N (classes per episode)") without rewriting the message.
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the user asked for cannot be done; the message says what to change."""

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


class ConfigError(UserError):
    """A setting is out of range or unknown."""


def one_line(text: str) -> str:
    """`text` on one line: a message may carry a path or an exception text with line breaks in it."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def explain(exc: BaseException) -> UserError | None:
    """The problem a user can fix behind an exception raised below MetaScope's own checks, or None (a bug).

    A file or folder name that is not valid UTF-8 travels through Python as lone surrogates, which fail
    wherever the name is written out (a cache key, a CSV, a JSON file); running out of memory has a size
    to lower.
    """
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, UnicodeEncodeError) and "surrogate" in exc.reason:
        text = exc.object if isinstance(exc.object, str) else ""
        start = max(text.rfind(sep, 0, exc.start) for sep in ("\n", "\t", "/", "\0")) + 1
        ends = [i for i in (text.find(sep, exc.end) for sep in ("\n", "\t", "/", "\0")) if i >= 0]
        name = text[start : min(ends, default=len(text))].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return UserError(f"the file or folder name '{name[:120]}' is not valid UTF-8; rename it (or move it out of the data folder)")
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(exc):
        return UserError("out of memory; use fewer or smaller episodes, a smaller learner or smaller images, or free some memory")
    return None
