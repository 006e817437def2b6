"""What the engine will compute on, read without importing torch (importing it takes 1-2 s).

The dashboard's first page shows the device before the engine is loaded. The reading follows torch's
own rules: CUDA when the installed torch is a CUDA build and the NVIDIA driver lists a visible GPU;
on the CPU, as many threads as OMP_NUM_THREADS says, else one per physical core. Once torch is
imported, core.device answers instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def torch_cuda_build() -> bool:
    """Whether the installed torch was built with CUDA (its version.py names a CUDA version)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return False
    match = re.search(r"^cuda\s*(?::[^=]+)?=\s*(.+)$", text, flags=re.M)
    return match is not None and match.group(1).strip() not in ("None", "''", '""')


def visible_gpu_names(gpus: Path = NVIDIA_GPUS) -> list[str]:
    """Names of the GPUs the driver lists, less those CUDA_VISIBLE_DEVICES hides (by index)."""
    try:
        names = [_model(folder / "information") for folder in sorted(gpus.iterdir())]
    except OSError:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return names
    picked = []
    for item in visible.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) >= len(names):
            break  # CUDA stops at the first entry it cannot use ("-1", "", a UUID we do not resolve)
        picked.append(names[int(item)])
    return picked


def _model(information: Path) -> str:
    match = re.search(r"^Model:\s*(.+)$", information.read_text(encoding="utf-8", errors="replace"), flags=re.M)
    return match.group(1).strip() if match else "NVIDIA GPU"


def cpu_threads(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    """torch's default thread count: OMP_NUM_THREADS, else physical cores, else logical CPUs."""
    if (env := os.environ.get("OMP_NUM_THREADS", "")).isdigit() and int(env) > 0:
        return int(env)
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return os.cpu_count() or 1
    cores = set()
    for block in text.split("\n\n"):  # one block per logical CPU
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "physical id" in fields and "core id" in fields:
            cores.add((fields["physical id"], fields["core id"]))
    logical = os.cpu_count() or 1
    return len(cores) if 0 < len(cores) < logical else logical


def cuda_label(index: int, name: str) -> str:
    """The wording of a GPU everywhere: 'CUDA 0: NVIDIA H200'."""
    return f"CUDA {index}: {name}"


def cpu_label(threads: int) -> str:
    """The wording of the CPU everywhere: 'CPU (2 threads)'."""
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


def describe_default_device() -> str:
    """The label core.device.describe_device(resolve_device('auto')) gives, without importing torch."""
    gpus = visible_gpu_names() if torch_cuda_build() else []
    return cuda_label(0, gpus[0]) if gpus else cpu_label(cpu_threads())
