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


def describe_device(device: torch.device | str) -> str:
    """A human label: 'CPU (2 threads)' or 'CUDA 0: NVIDIA H100 80GB HBM3'."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"CUDA {index}: {torch.cuda.get_device_name(index)}"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"
