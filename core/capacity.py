"""Whether a learner fits before it is built: the backbone's smallest image, and the memory training it takes.

Both are checked in core.experiment.preflight, so `--image-size 8` or `--hidden 16384` on a small machine
is refused in one line before anything is allocated, rather than failing deep inside a layer or the
allocator (or, worse, making the machine swap).
"""

from __future__ import annotations

import resource
from pathlib import Path

import torch

from core.config import ConfigError, LearnerConfig
from core.learners import learner_class, make_learner

# the smallest image side each backbone takes: Conv-4's four 2x poolings (floor) need 16 pixels for a 1x1 map;
# ResNet-12 pools with ceil_mode and averages globally, so any size works. tests/reliability checks this table.
MIN_IMAGE_SIDE = {"conv4": 16, "resnet12": 1}
TRAINING_COPIES = 4  # weights, gradients and Adam's two moments, float32 each
SIZE_SETTINGS = ("hidden", "relation_hidden")  # what makes a learner large, besides the image size and backbone


def check_image_size(learner: LearnerConfig, image_shape: tuple[int, int, int]) -> None:
    """ConfigError (image_size) when the images are smaller than the backbone takes."""
    side, need = min(image_shape[1:]), MIN_IMAGE_SIDE.get(learner.backbone, 1)
    if side < need:
        raise ConfigError(
            f"images of {side} pixels are too small for the {learner.backbone} backbone; use at least {need} (or the resnet12 backbone)",
            "image_size",
        )


def count_parameters(learner: LearnerConfig, image_shape: tuple[int, int, int]) -> int | None:
    """Parameters and buffers of the learner for images of `image_shape`, counted on the meta device (nothing
    allocated); None when a layer cannot be built there."""
    c, h, _ = image_shape
    try:
        with torch.device("meta"):
            built = make_learner(learner, c, h)
    except NotImplementedError:
        return None
    except ValueError as exc:  # a layer that refuses the size (an image too small for a new backbone)
        raise ConfigError(f"a {learner.method} learner cannot be built for {c}x{h}x{h} images: {exc}", "image_size") from None
    return sum(t.numel() for t in (*built.parameters(), *built.buffers()))


def free_memory(device: torch.device) -> int | None:
    """Bytes this process can still allocate on `device`: the GPU's free memory, or on the CPU the least of the
    system's available memory, the container's (cgroup) limit and the process's address-space limit. None if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    limits = [_meminfo_available(), _cgroup_room()]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft - _own_virtual_size())
    known = [x for x in limits if x is not None]
    return max(min(known), 0) if known else None


def check_memory(learner: LearnerConfig, image_shape: tuple[int, int, int], device: torch.device) -> None:
    """ConfigError when training the learner would need more memory than `device` has free (weights, gradients, Adam)."""
    params = count_parameters(learner, image_shape)
    free = free_memory(device)
    if params is None or free is None or params * 4 * TRAINING_COPIES <= free:
        return
    reads = [s for s in SIZE_SETTINGS if s in learner_class(learner.method).settings]
    lower = f"a smaller {reads[0].replace('_', ' ')} size" if reads else "a smaller backbone"
    gb = lambda n: f"{n / 2**30:.1f} GB"
    raise ConfigError(
        f"this {learner.method} learner has {params:,} parameters: training it takes about {gb(params * 4 * TRAINING_COPIES)}, "
        f"more than the {gb(free)} free; use {lower} or smaller images",
        reads[0] if reads else "backbone",
    )


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """cgroup v2: memory.max minus memory.current of this process's group, when limited."""
    try:
        group = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        folder = Path("/sys/fs/cgroup") / group.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((folder / "memory.current").read_text())
    except (OSError, ValueError, IndexError):
        return None


def _own_virtual_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
