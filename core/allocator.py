"""glibc's malloc, set for training: freed blocks kept for the next step, and few arenas in a threaded server.

Freed memory. glibc serves each block above 32 MiB (at most; less by default) with a fresh mmap and unmaps it on
free. A Conv-4 step on a 30-way episode allocates activations of about 36 MB several times over, so every step
mapped new pages and the kernel zeroed each of them on first touch: on the 2-core CPU this project is measured
on, a third of training's CPU time went to the kernel (150 million page faults in a 3,000-episode run). With
mmap off and the heap never trimmed, freed blocks are reused: 300 episodes of `--recipe lake` trained in 44-47 s
instead of 72-85 s, system time 1.3 s instead of 45-54 s, for a peak resident size about a fifth higher (which
then stays). `keep_freed_memory()` runs where a process starts to train (make_trainer) and at the dashboard's start.

Arenas. glibc gives threads their own arenas, up to 8 per core, each keeping what was freed in it, and an arena
other than the first grows in 64 MB heaps that are mapped and unmapped as a step's blocks come and go: a run
trained in a thread of the dashboard's server kept a third of the faults. `limit_arenas(1)` at the server's start
(before any thread; a page script is too late) puts every thread on the first arena.

METASCOPE_MALLOC=system leaves malloc as glibc sets it (an A/B, or a process that must give memory back), as does
MALLOC_ARENA_MAX for the arenas; other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform

ENV = "METASCOPE_MALLOC"
# mallopt's parameter numbers in glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_NEVER_TRIM = 2**31 - 1  # free heap top kept before any is given back: 2 GiB, the most an int (mallopt's type) says


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, loaded once per process (libc_ver reads the interpreter's binary); None under another C library."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _glibc_mallopt(*settings: tuple[int, int]) -> bool:
    """mallopt(param, value) for each setting -> whether all held; False without glibc or with METASCOPE_MALLOC=system."""
    libc = None if os.environ.get(ENV, "").strip().lower() == "system" else _glibc()
    if libc is None:
        return False
    return all([bool(libc.mallopt(param, value)) for param, value in settings])  # a list: every setting is tried


def keep_freed_memory() -> bool:
    """Make glibc reuse freed blocks (no mmap per large block, no trimming) -> whether it was applied. Idempotent."""
    return _glibc_mallopt((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER_TRIM))


def limit_arenas(arenas: int = 1) -> bool:
    """Cap glibc's malloc arenas (before any thread starts) -> whether it was applied; the user's MALLOC_ARENA_MAX wins."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return _glibc_mallopt((_M_ARENA_MAX, arenas))
