"""The first page is drawn before the engine loads: Home imports no torch, and its device reading
without torch says what torch says."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.device import describe_device, resolve_device
from core.hardware import cpu_threads, describe_default_device, torch_cuda_build, visible_gpu_names
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
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "", "PYTHONPATH": str(ROOT), "METASCOPE_RUNS_DIR": str(tmp_path / "runs")})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    loaded, metrics = done.stdout.splitlines()[-2:]
    assert loaded.split()[0] == "False"  # torch, 1-2 s of a cold start, is left to the background preload
    assert f"'Device': '{describe_default_device()}'" in metrics and "'Dataset': 'glyphs'" in metrics


def test_device_read_without_torch_is_torchs_label() -> None:
    assert describe_default_device() == describe_device(resolve_device("auto"))


def gpu_folder(root: Path, *models: str) -> Path:
    for i, model in enumerate(models):
        (root / f"0000:0{i}:00.0").mkdir(parents=True)
        (root / f"0000:0{i}:00.0" / "information").write_text(f"Model: \t {model}\nIRQ:  42\n")
    return root


def test_visible_gpus_follow_the_driver_and_cuda_visible_devices(tmp_path: Path, monkeypatch) -> None:
    gpus = gpu_folder(tmp_path / "gpus", "NVIDIA H200", "NVIDIA A100")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpu_names(gpus) == ["NVIDIA H200", "NVIDIA A100"]
    cases = (("1", ["NVIDIA A100"]), ("1,0", ["NVIDIA A100", "NVIDIA H200"]), ("-1", []), ("", []), ("0,7,1", ["NVIDIA H200"]))
    for visible, names in cases:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert visible_gpu_names(gpus) == names, visible
    assert visible_gpu_names(tmp_path / "no-driver") == []
    assert torch_cuda_build() == (sys.modules["torch"].version.cuda is not None)


def test_cpu_threads_count_physical_cores_unless_omp_says(tmp_path: Path, monkeypatch) -> None:
    # 2 physical cores with 2 hyperthreads each: torch uses 2 threads
    blocks = [f"processor\t: {i}\nphysical id\t: 0\ncore id\t\t: {i // 2}\n" for i in range(4)]
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("\n".join(blocks))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert cpu_threads(cpuinfo) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads(cpuinfo) == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cpu_threads(tmp_path / "none") == 4  # no cpuinfo: the logical CPUs


def test_preload_imports_once_per_process(monkeypatch) -> None:
    monkeypatch.setattr("dashboard.preload._thread", None)
    first = preload_engine(("json", "no_such_module_for_metascope"))  # a failure is logged, not raised
    assert first is preload_engine(("csv",)) and first.daemon
    first.join(10)
    assert not first.is_alive() and "json" in sys.modules


@pytest.mark.parametrize("name", ["EpisodeShape", "ClassPool", "start_run"])
def test_core_names_load_on_first_use(name: str) -> None:
    import core

    assert name in dir(core) and getattr(core, name).__name__ == name
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        core.nothing_here  # noqa: B018
