"""CIFAR-FS (Bertinetto et al.) and FC100 (Oreshkin et al.) from CIFAR-100 as torchvision leaves it on disk.

CIFAR-100's Python version (cifar-100-python/, what torchvision downloads) stores its arrays as
pickles. They are read with an unpickler that can only build dicts, lists, strings, numbers and
numpy arrays: a tampered file fails to load instead of running code. The binary version
(cifar-100-binary/) needs no unpickling at all. All 600 images of each class are used (the
official train and test files together), as both benchmarks do.
"""

from __future__ import annotations

import codecs
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy._core.multiarray import _reconstruct
from PIL import Image

from core.data.base import CIFAR100_STATS, DataError, ImageSet, cache_dir
from core.data.cache import NO_HOOKS, Decoder, Hooks, Plan, Source, cache_key, load_cached
from core.data.fingerprint import Sources
from core.data.images import RESAMPLE
from core.data.splitfiles import StandardSplit, count_warning, read_split

PER_CLASS = 600
PYTHON_FOLDER, BINARY_FOLDER = "cifar-100-python", "cifar-100-binary"
RECORD = 2 + 3 * 32 * 32  # binary version: coarse label, fine label, 3072 pixel bytes
DECODER = "cifar-lanczos-v1"
HOW_TO_FIX = (
    f"point the data folder at the folder holding {PYTHON_FOLDER}/ (torchvision.datasets.CIFAR100's root) or {BINARY_FOLDER}/, "
    "or download CIFAR-100 on a machine with network access (python -m core download cifar_fs)"
)


@dataclass(frozen=True)
class _Arrays:
    images: np.ndarray  # uint8 (n, 3, 32, 32)
    fine: np.ndarray  # int64 (n,) CIFAR-100 fine label
    coarse: np.ndarray  # int64 (n,) super-class


def load_cifar_fs(
    data_dir: Path | None, image_size: int = 32, download: bool = False, cache_root: Path | None = None, hooks: Hooks = NO_HOOKS
) -> ImageSet:
    """CIFAR-FS: the 100 CIFAR-100 classes split 64 / 16 / 20 as Bertinetto et al.; groups are the super-classes."""
    split = read_split("cifar_fs")
    return _load("cifar_fs", split.classes, split.splits, split, data_dir, image_size, download, cache_root, hooks)


def load_fc100(
    data_dir: Path | None, image_size: int = 32, download: bool = False, cache_root: Path | None = None, hooks: Hooks = NO_HOOKS
) -> ImageSet:
    """FC100: CIFAR-100 split by super-class, 12 / 4 / 4 super-classes (60 / 20 / 20 classes) as Oreshkin et al."""
    names = read_split("cifar_fs")  # every fine class with its super-class
    by_super = read_split("fc100")
    classes = tuple(sorted(names.classes, key=lambda c: (by_super.classes.index(names.group_of(c)), c)))
    splits = tuple(by_super.split_of(names.group_of(c)) for c in classes)
    return _load("fc100", classes, splits, names, data_dir, image_size, download, cache_root, hooks)


def _load(
    name: str,
    classes: tuple[str, ...],
    splits: tuple[str, ...],
    names: StandardSplit,
    data_dir: Path | None,
    size: int,
    download: bool,
    cache_root: Path | None,
    hooks: Hooks,
) -> ImageSet:
    folder = _locate(Path(data_dir).expanduser() if data_dir else (cache_root or cache_dir()) / "cifar100", download)
    files = _files(folder)
    key = cache_key(dataset=name, root=str(folder.resolve()), image_size=size, decoder=DECODER)
    source = Source(name, key, Sources(folder, files), cache_root)
    return load_cached(source, lambda: _plan(name, folder, classes, splits, names, size), hooks)


def _locate(root: Path, download: bool) -> Path:
    """The cifar-100-python or cifar-100-binary folder at or under root (downloaded there when asked)."""
    for folder in (root, root / PYTHON_FOLDER, root / BINARY_FOLDER):
        if _files(folder):
            return folder
    if download:
        return _download(root)
    if not root.exists():
        raise DataError(f"CIFAR-100 folder {root} does not exist; {HOW_TO_FIX}", "data_dir")
    raise DataError(
        f"no CIFAR-100 found in {root} (no {PYTHON_FOLDER}/train and test, no {BINARY_FOLDER}/train.bin and test.bin); {HOW_TO_FIX}"
    )


def _files(folder: Path) -> tuple[Path, ...]:
    """The data files of one of the two versions in `folder`, or () when it holds neither."""
    for names in (("train", "test"), ("train.bin", "test.bin")):
        if all((folder / n).is_file() for n in names):
            return tuple(folder / n for n in names)
    return ()


def _download(root: Path) -> Path:
    from torchvision.datasets import CIFAR100
    from torchvision.datasets.utils import download_and_extract_archive

    try:  # torchvision's downloader checks the archive's md5; its CIFAR100 class (which unpickles freely) is not used
        download_and_extract_archive(CIFAR100.url, str(root), filename=CIFAR100.filename, md5=CIFAR100.tgz_md5)
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"downloading CIFAR-100 into {root} failed ({exc}); check the network connection, or {HOW_TO_FIX}") from exc
    return _locate(root, download=False)


def _plan(name: str, folder: Path, classes: tuple[str, ...], splits: tuple[str, ...], names: StandardSplit, size: int) -> Plan:
    """Every image of the train and test files, ordered by class in `classes` order; labels checked against the split file."""
    data = _read(folder)
    fine_names = sorted(names.classes)  # CIFAR-100 numbers its fine classes in alphabetical order, super-classes too
    super_names = sorted(set(names.groups or ()))
    _check_super_classes(data, fine_names, super_names, names, folder)
    order = {c: i for i, c in enumerate(classes)}
    labels = np.array([order[fine_names[f]] for f in data.fine], dtype=np.int64)
    rows = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=len(classes))
    images = data.images

    def decode(row: int) -> np.ndarray:
        if size == 32:
            return images[row]
        picture = Image.fromarray(images[row].transpose(1, 2, 0), "RGB").resize((size, size), RESAMPLE)
        return np.asarray(picture, dtype=np.uint8).transpose(2, 0, 1)

    return Plan(
        items=rows.tolist(),
        labels=labels[rows].tolist(),
        class_names=classes,
        prepare=lambda: Decoder((3, size, size), decode),
        class_groups=tuple(names.group_of(c) for c in classes),
        class_splits=splits,
        source=f"{name}: {folder}",
        warnings=tuple(count_warning({c: int(counts[i]) for i, c in enumerate(classes)}, PER_CLASS, name)),
        normalisation=CIFAR100_STATS,
        item_name=lambda row: f"CIFAR-100 image {row}",
    )


def _check_super_classes(data: _Arrays, fine_names: list[str], super_names: list[str], names: StandardSplit, folder: Path) -> None:
    """Each fine class must sit in the super-class the split file gives it, or this is not CIFAR-100."""
    if len(fine_names) != 100 or len(super_names) != 20 or data.fine.max() >= 100 or data.coarse.max() >= 20:
        raise DataError(f"{folder} does not hold CIFAR-100's 100 classes in 20 super-classes; {HOW_TO_FIX}")
    pairs = set(zip(data.fine.tolist(), data.coarse.tolist(), strict=True))
    wrong = sorted(fine_names[f] for f, s in pairs if names.group_of(fine_names[f]) != super_names[s])
    if wrong:
        raise DataError(
            f"{folder}: the super-classes of {', '.join(wrong[:5])} differ from CIFAR-100's; this is not CIFAR-100 ({HOW_TO_FIX})"
        )


def _read(folder: Path) -> _Arrays:
    parts = [_read_binary(p) if p.suffix == ".bin" else _read_python(p) for p in _files(folder)]
    return _Arrays(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("images", "fine", "coarse")))


def _read_binary(path: Path) -> _Arrays:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % RECORD:
        raise DataError(f"{path} is not a CIFAR-100 binary file ({raw.size} bytes is not a whole number of {RECORD}-byte records)")
    records = raw.reshape(-1, RECORD)
    return _Arrays(records[:, 2:].reshape(-1, 3, 32, 32), records[:, 1].astype(np.int64), records[:, 0].astype(np.int64))


def _read_python(path: Path) -> _Arrays:
    try:
        with open(path, "rb") as handle:
            batch = _DataOnlyUnpickler(handle, encoding="bytes").load()
        data, fine, coarse = batch[b"data"], batch[b"fine_labels"], batch[b"coarse_labels"]
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(
                f"its data is {type(data).__name__} {getattr(data, 'dtype', '')} {getattr(data, 'shape', '')}, not uint8 (n, 3072)"
            )
        fine, coarse = np.asarray(fine, dtype=np.int64), np.asarray(coarse, dtype=np.int64)
        if fine.shape != (len(data),) or coarse.shape != (len(data),):
            raise ValueError("its labels do not match its images")
    except (pickle.UnpicklingError, ValueError, KeyError, TypeError, EOFError, AttributeError, IndexError) as exc:
        raise DataError(f"{path} is not a CIFAR-100 batch file ({exc}); download it again, or {HOW_TO_FIX}") from exc
    return _Arrays(data.reshape(-1, 3, 32, 32), fine, coarse)


_PLAIN_DATA = {  # the only globals an array pickle needs; none of them can run code of the file's choosing
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # how Python 2's numpy pickled arrays (CIFAR's files)
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # protocol-2 pickles of bytes written by Python 3
}


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain data only: dicts, lists, strings, numbers and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PLAIN_DATA:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which plain data never does")
        return _PLAIN_DATA[(module, name)]
