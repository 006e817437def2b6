"""What the benchmark reads off the machine: FLOPs of a step, matmul throughput, memory, load."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(step: Callable[[], None]) -> int:
    """Floating-point operations `step()` performs in matmuls and convolutions (forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return int(counter.get_total_flops())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, seconds: float = 1.0, n: int = 1024, repeats: int = 3, dtype: torch.dtype = torch.float32) -> float:
    """Sustained matmul GFLOP/s in `dtype`: the best of `repeats` runs of about `seconds` / `repeats` each.

    The best, not the mean: on a shared machine other processes only ever slow a run down.
    """
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # first call pays library start-up
    sync(device)
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / repeats:
            a @ b
            calls += 1
        sync(device)
        best = max(best, 2 * n**3 * calls / (time.perf_counter() - start) / 1e9)
    return best


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def load_average() -> float:
    """The 1-minute load average (0.0 where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result
