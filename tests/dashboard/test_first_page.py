"""The first page is drawn before the engine loads: Home imports no torch, and shows the device once torch is in."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from core.device import describe_device, resolve_device
from dashboard.preload import preload_engine

ROOT = Path(__file__).resolve().parents[2]


def test_home_is_drawn_without_importing_torch(tmp_path: Path) -> None:
    probe = textwrap.dedent(f"""
        import sys
        from streamlit.testing.v1 import AppTest
        import dashboard.preload
        dashboard.preload.preload_engine = lambda: None  # what Home alone imports, not the warm-up after it
        at = AppTest.from_file({str(ROOT / "dashboard" / "app.py")!r}, default_timeout=60).run()
        assert not at.exception, at.exception
        print("torch" in sys.modules, "pandas" in sys.modules)
        print(dict((m.label, m.value) for m in at.metric))
        import torch  # the engine is in: the next draw shows the device
        print(dict((m.label, m.value) for m in at.run().metric))
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "", "PYTHONPATH": str(ROOT), "METASCOPE_RUNS_DIR": str(tmp_path / "runs")})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    loaded, metrics, later = done.stdout.splitlines()[-3:]
    assert loaded.split()[0] == "False"  # torch, 1-2 s of a cold start, is left to the background preload
    assert "'Device': 'loading the engine…'" in metrics and "'Dataset': 'glyphs'" in metrics
    assert f"'Device': '{describe_device(resolve_device('auto'))}'" in later


def test_preload_imports_once_per_process(monkeypatch) -> None:
    monkeypatch.setattr("dashboard.preload._thread", None)
    first = preload_engine(("json", "no_such_module_for_metascope"))  # a failure is logged, not raised
    assert first is preload_engine(("csv",)) and first.daemon
    first.join(10)
    assert not first.is_alive() and "json" in sys.modules
