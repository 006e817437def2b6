"""Larger than memory: a folder dataset whose decoded cache is 3x the memory cap trains within the cap.

What bounds memory here, and how it is measured (in a fresh process, tests/memory_probe.py):
- RLIMIT_DATA is the hard limit. Since Linux 4.7 it counts the heap and every private writable mapping
  (all the anonymous memory a process can fill), but not a read-only shared file mapping: exactly the
  memory a copy of the dataset would need and a memory map does not. It is set to the process's size
  after importing torch plus PRIVATE_MB, so any copy of a split (or of its 4 rotations) fails with an error.
  (RLIMIT_AS would count the map's address space, the thing that may exceed memory; RLIMIT_RSS is ignored by Linux.)
- VmHWM, the peak resident set of the whole process (libraries, heap, and every page of the map it touched),
  must stay under CAP_MB, while the cache is at least 3 x CAP_MB. Pages of the map are page cache: the kernel
  can drop them under pressure, so a resident set above the cap would still not mean the data had to fit.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CAP_MB = 1152  # peak resident set allowed, MiB: ~520 of it is the interpreter and torch before any data (~970 measured)
PRIVATE_MB = 512  # private memory the process may add after importing torch (the hard RLIMIT_DATA limit)
SIZE = 192  # 3 x 192 x 192 = 108 KiB a decoded image
CLASSES, PER_CLASS = 170, 200  # 34,000 images: 3.5 GiB decoded
DISK_MB = 4096  # the decoded cache, the 34,000 source files (a 4 KiB block each) and a margin


def _folder(root: Path) -> Path:
    """Tiny 16 x 16 BMP sources, cheap to write and decode (the decoded size is what counts): one header, random pixels."""
    template = io.BytesIO()
    Image.new("RGB", (16, 16)).save(template, format="BMP")
    header = template.getvalue()[: -16 * 16 * 3]  # 48-byte rows need no padding: the pixels are the last 768 bytes
    pixels = np.random.default_rng(0).integers(0, 256, (CLASSES, PER_CLASS, 16 * 16 * 3), dtype=np.uint8)
    for c in range(CLASSES):
        folder = root / f"class{c:03d}"
        folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            (folder / f"{i}.bmp").write_bytes(header + pixels[c, i].tobytes())
    return root


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the process's memory from /proc (Linux)")
def test_dataset_three_times_the_memory_cap_trains_under_it(tmp_path: Path):
    free_mb = shutil.disk_usage(tmp_path).free >> 20
    if free_mb < DISK_MB:  # a disk too full for the data is the machine's state, not the cache's behaviour
        pytest.skip(f"needs {DISK_MB} MiB free under {tmp_path.parent} for a cache 3x the cap; {free_mb} MiB are free")
    try:
        data = _folder(tmp_path / "data")
        probe = Path(__file__).with_name("memory_probe.py")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        run = subprocess.run(
            [sys.executable, str(probe), str(data), str(tmp_path / "cache"), str(SIZE), str(PRIVATE_MB)],
            capture_output=True, text=True, env=env, timeout=900,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        figures = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"memory figures (MiB) and decode time: {figures}")  # shown with pytest -s
        assert figures["cache_mb"] >= 3 * CAP_MB, figures
        assert figures["end"]["VmHWM"] <= CAP_MB, figures  # the peak over the whole run: build, load and training
        assert all(np.isfinite(figures["losses"]))
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)  # 3 GiB: not left for pytest's basetemp to keep
