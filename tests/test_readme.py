"""The README's Python example runs as printed (with fewer episodes, in a temporary folder)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_trains_loads_and_evaluates(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    code = blocks[0].replace("episodes=300", "episodes=20").replace("episodes=600", "episodes=50")
    assert "episodes=20" in code and "episodes=50" in code, "the test shortens the example; the README changed shape"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.fullmatch(r"accuracy: \d+\.\d\d ± \d+\.\d\d\n", done.stdout), done.stdout
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "config.json").is_file()
