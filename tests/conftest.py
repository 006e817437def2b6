"""Shared fixtures: tiny seeded datasets, an isolated cache, the Omniglot location."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.base import ImageSet, cache_dir

OMNIGLOT_DIR = Path(os.environ.get("METASCOPE_OMNIGLOT_TEST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded datasets go to a per-session cache, never the user's ~/.cache.

    numba's compiled UMAP code stays in the lasting cache (it depends on no test data), so it is compiled once
    per machine rather than once per test session (20-60 s)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))
    if "METASCOPE_CACHE" not in os.environ or os.environ.get("CI"):
        os.environ["METASCOPE_CACHE"] = str(tmp_path_factory.mktemp("metascope-cache"))
    torch.set_num_threads(min(2, os.cpu_count() or 1))


def make_toy_set(n_classes: int = 30, per_class: int = 12, size: int = 16, seed: int = 0, groups: int | None = None) -> ImageSet:
    """Classes = sparse random patterns; samples = the pattern under strong pixel noise.

    Easy for any learner and cheap: for tests of mechanics, not of accuracy.
    """
    g = torch.Generator().manual_seed(seed)
    patterns = (torch.rand(n_classes, 1, size, size, generator=g) > 0.75).float()
    noise = torch.rand(n_classes * per_class, 1, size, size, generator=g)
    images = ((0.45 * patterns.repeat_interleave(per_class, 0) + 0.55 * noise) * 255).to(torch.uint8)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    names = tuple(f"class-{i:03d}" for i in range(n_classes))
    class_groups = tuple(f"group-{i % groups}" for i in range(n_classes)) if groups else None
    return ImageSet("toy", images, labels, names, class_groups, source=f"toy seed={seed}")


def write_image_folder(root: Path, groups: int = 4, classes: int = 5, per_class: int = 20, size: int = 28) -> Path:
    """group/class/NN.png: each class a random pattern of squares, each image that pattern plus noise."""
    rng = np.random.default_rng(0)
    for g in range(groups):
        for c in range(classes):
            pattern = rng.random((size // 4, size // 4)) > 0.6
            base = np.kron(pattern, np.ones((4, 4))) * 200
            folder = root / f"group{g}" / f"class{g}{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{i:02d}.png")
    return root


@pytest.fixture
def toy_set() -> ImageSet:
    return make_toy_set()


@pytest.fixture(scope="session")
def omniglot_dir() -> Path:
    if not OMNIGLOT_DIR.exists():
        pytest.skip(f"Omniglot zips not found at {OMNIGLOT_DIR}; set METASCOPE_OMNIGLOT_TEST_DIR")
    return OMNIGLOT_DIR
