"""Classify a folder of query images with a saved learner and a support folder (one sub-folder per class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.data.base import DataError
from core.data.images import flatten, is_image_file, open_image, square_resize, to_array
from core.data.registry import normalisation_of
from core.episodes import to_float
from core.experiment import load_learner

# datasets stored as bright strokes on dark: files in the usual dark-on-light form are inverted to match
INVERTED_DATASETS = frozenset({"omniglot"})


def load_images(paths: list[Path], size: int, channels: int, invert: bool) -> torch.Tensor:
    """uint8 (n, channels, size, size), prepared the way the run's training data was; DataError names a bad file."""
    arrays = []
    for path in paths:
        try:
            arrays.append(to_array(square_resize(flatten(open_image(path, upright=True)), size), channels, invert))
        except Exception as exc:  # PIL raises many types for a damaged file; the user needs the path
            raise DataError(f"cannot read image {path} ({type(exc).__name__}: {exc}); remove or replace it") from exc
    return torch.from_numpy(np.stack(arrays))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_file(p))


def predict_folders(
    run_dir: str | Path, support_dir: str | Path, query_dir: str | Path, checkpoint: int | None = None
) -> list[tuple[str, str, float]]:
    """(query file name, predicted class, probability of that class) for every image in `query_dir`.

    support_dir holds one sub-folder of images per class (at least two classes, one image or more each).
    """
    support_dir, query_dir = Path(support_dir), Path(query_dir)
    for folder in (support_dir, query_dir):
        if not folder.is_dir():
            raise DataError(f"{folder} is not a directory")
    classes = sorted(p for p in support_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {c.name: _image_files(c) for c in classes}
    if len([c for c in files if files[c]]) < 2:
        raise DataError(f"{support_dir} needs at least 2 class sub-folders with images (found {sum(bool(f) for f in files.values())})")
    empty = [c for c, f in files.items() if not f]
    if empty:
        raise DataError(f"support class folder(s) without images: {', '.join(empty)}; add images or remove them")
    queries = _image_files(query_dir)
    if not queries:
        raise DataError(f"{query_dir} has no images to classify")
    learner, config, _ = load_learner(run_dir, checkpoint)
    size, channels = learner.image_size, learner.in_channels
    invert = config.train.dataset in INVERTED_DATASETS
    names = list(files)
    support_x = load_images([p for c in names for p in files[c]], size, channels, invert)
    support_y = torch.tensor([i for i, c in enumerate(names) for _ in files[c]])
    query_x = load_images(queries, size, channels, invert)
    with torch.no_grad():
        norm = normalisation_of(config.train.dataset)  # the floats the run was trained on
        probs = learner(to_float(support_x, norm), support_y, to_float(query_x, norm), len(names)).softmax(1)
    best, index = probs.max(1)
    return [(q.name, names[int(i)], float(p)) for q, i, p in zip(queries, index, best, strict=True)]
