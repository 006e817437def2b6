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
