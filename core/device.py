"""Where the engine computes: CUDA when there is one, else the CPU."""

from __future__ import annotations

import torch

from core.config import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when available; an explicit 'cuda' without a GPU is an error that says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu or auto")
    return device


def mixed_precision(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype training uses: bf16 or None (plain float32).

    'auto' takes bf16 on a CUDA device that has it (tensor cores; BN and losses stay float32
    under autocast) and float32 on the CPU, where bf16 convolutions are slower on most processors.
    """
    device = torch.device(device)
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def describe_device(device: torch.device | str) -> str:
    """A human label: 'CPU (2 threads)' or 'CUDA 0: NVIDIA H100 80GB HBM3'."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"CUDA {index}: {torch.cuda.get_device_name(index)}"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"
