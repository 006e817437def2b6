"""Run by tests/test_memory.py in a fresh process: decode a folder dataset into the cache and train a few
episodes on it under a hard limit on private memory, then print the process's memory figures as JSON.

usage: python tests/memory_probe.py DATA_DIR CACHE_DIR IMAGE_SIZE PRIVATE_LIMIT_MB
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def status() -> dict[str, int]:
    """This process's memory figures in MiB from /proc/self/status (VmHWM: peak resident set, all kinds)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "VmData"):
            fields[key] = int(value.split()[0]) // 1024
    return fields


def main(data_dir: str, cache_dir: str, image_size: int, private_limit_mb: int) -> None:
    import torch

    from core.config import LearnerConfig
    from core.data.folder import load_folder
    from core.data.splits import split_classes
    from core.episodes import ClassPool, EpisodeSampler
    from core.learners import make_learner

    torch.set_num_threads(1)
    start = status()
    limit = (start["VmData"] + private_limit_mb) << 20  # heap and every private mapping; a read-only file map is not counted
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    began = time.perf_counter()
    image_set = load_folder(data_dir, image_size=image_size, cache_root=Path(cache_dir))
    loaded, load_s = status(), time.perf_counter() - began
    pool = ClassPool(image_set, split_classes(image_set).classes("train"), rotations=True)
    torch.manual_seed(0)
    learner = make_learner(LearnerConfig(method="protonet", backbone="conv4"), 3, image_size)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    sampler = EpisodeSampler(pool, n_way=2, k_shot=1, q_query=1, seed=0)
    losses = []
    for _ in range(5):
        episode = sampler.sample()
        loss, _ = learner.episode_loss(episode.support_x, episode.support_y, episode.query_x, episode.query_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    cache_mb = image_set.images.numel() >> 20  # uint8: one byte per element
    figures = {"start": start, "loaded": loaded, "end": status(), "cache_mb": cache_mb, "load_s": round(load_s, 1), "losses": losses}
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
