"""The allocator setting: after keep_freed_memory(), large blocks freed by one step are reused by the next instead
of being unmapped and mapped again (each new page costs a fault and the kernel's zeroing)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from core.allocator import ENV, keep_freed_memory, limit_arenas

ROOT = Path(__file__).resolve().parents[1]
# 40 rounds of a 64 MiB tensor made, written and freed, as a training step's activations are; prints the page faults
ROUNDS = """
import resource, sys, torch
from core.allocator import keep_freed_memory
print(keep_freed_memory())
torch.empty(16 * 2**20).fill_(1.0)  # the first block's pages are new either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    torch.empty(16 * 2**20).fill_(1.0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES_PER_BLOCK = 64 * 2**20 // 4096


def faults(env: dict[str, str]) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", ROUNDS], capture_output=True, text=True, check=True, cwd=ROOT, env=env, timeout=120)
    applied, count = out.stdout.split()
    return applied, int(count)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_freed_blocks_are_reused_instead_of_mapped_again():
    env = {k: v for k, v in os.environ.items() if k != ENV}
    applied, system = faults({**env, ENV: "system"})
    assert applied == "False" and system > 30 * PAGES_PER_BLOCK  # glibc's default: each block's pages anew
    applied, kept = faults(env)
    # kept: most pages are reused (here 2,048-2,900 faults a round, from torch's aligned blocks shifting in the heap,
    # against 16,384; plain malloc of the same blocks faults none)
    assert applied == "True" and kept < system / 4, (kept, system)


def test_system_and_the_users_arena_cap_leave_the_c_library_as_it_is(monkeypatch):
    monkeypatch.setenv(ENV, "system")
    assert keep_freed_memory() is False and limit_arenas() is False
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False
