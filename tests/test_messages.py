"""The engine's messages speak of what a user sets, never of code: no `name=value`, no `a_b + c` in a raised message."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_LIKE = re.compile(r"(^|[\s(])[a-z][a-z0-9]*(_[a-z0-9]+)*=(\{|\d|')|[a-z]+_[a-z_]+ [+*/-] ")


def raised_messages(path: Path) -> list[tuple[int, str]]:
    """(line, source of the first argument) of every `raise SomeError(...)` in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            first = node.exc.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
            elif isinstance(first, ast.JoinedStr):
                found.append((node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in first.values)))
    return found


def test_no_engine_message_names_code():
    leaks = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path in sorted((ROOT / "core").rglob("*.py"))
        for line, text in raised_messages(path)
        if CODE_LIKE.search(text)
    ]
    assert not leaks, "\n".join(leaks)


def test_the_check_finds_code_names():
    assert CODE_LIKE.search("lr={}: use a learning rate") and CODE_LIKE.search("episodes=0: train longer")
    assert CODE_LIKE.search("k_shot + Q = 26") and not CODE_LIKE.search("use a learning rate above 0 (got {})")
