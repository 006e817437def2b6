"""Datasets as tensors: a registry by name, on-disk caching and class splits."""

from core.data.base import DataError, ImageSet
from core.data.registry import DATASETS, DEFAULT_DATASET, load_dataset
from core.data.splits import SPLIT_NAMES, ClassSplit, split_classes

__all__ = ["DATASETS", "DEFAULT_DATASET", "SPLIT_NAMES", "ClassSplit", "DataError", "ImageSet", "load_dataset", "split_classes"]
