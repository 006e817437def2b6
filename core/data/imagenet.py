"""miniImageNet and tieredImageNet from the images users have, in the layouts they have them, with the papers' splits."""

from __future__ import annotations

import csv
from pathlib import Path

from core.data.base import IMAGENET_STATS, SPLIT_NAMES, DataError, ImageSet
from core.data.cache import NO_HOOKS, Hooks, Source, cache_key, load_cached
from core.data.fingerprint import Sources
from core.data.folder import DECODER, ClassFolder, class_plan, image_files, subfolders
from core.data.splitfiles import StandardSplit, compare_classes, count_warning, listed, read_split, refuse_pickles

MINI_PER_CLASS = 600
MINI_LAYOUTS = (
    "images/ (all 60,000 images, flat) with train.csv, val.csv and test.csv (filename,label) beside it, "
    "or train/, val/ and test/ folders of one sub-folder per class (n01532829/...)"
)
MINI_HOW_TO_GET = (
    "make them from ImageNet's ILSVRC-2012 training images with Ravi & Larochelle's split csv files "
    "(github.com/twitter/meta-learning-lstm, data/miniImagenet; e.g. with github.com/yaoyao-liu/mini-imagenet-tools), "
    f"then point the data folder at a folder with {MINI_LAYOUTS}"
)
TIERED_LAYOUT = "train/, val/ and test/ folders of one sub-folder of images per ImageNet synset (n01530575/...)"
TIERED_HOW_TO_GET = (
    "make them from ImageNet's ILSVRC-2012 training images with Ren et al.'s split (github.com/renmengye/few-shot-ssl-public, "
    f"fewshot/data/tiered_imagenet_split), then point the data folder at a folder with {TIERED_LAYOUT}"
)


def load_mini_imagenet(data_dir: Path | None, image_size: int = 84, cache_root: Path | None = None, hooks: Hooks = NO_HOOKS) -> ImageSet:
    """miniImageNet (Vinyals et al.) with Ravi & Larochelle's 64 / 16 / 20 class split, either layout.

    Images uint8 (60000, 3, s, s), classes in split-file order (train, then val, then test),
    ImageSet.class_splits fixed to the published split, ImageNet normalisation.
    """
    root = _root(data_dir, "mini_imagenet", MINI_LAYOUTS, MINI_HOW_TO_GET)
    split = read_split("mini_imagenet")
    if (root / "images").is_dir() and all((root / f"{s}.csv").is_file() for s in SPLIT_NAMES):
        classes, sources, layout = _from_csv(root, split), [root / f"{s}.csv" for s in SPLIT_NAMES], "csv"
    elif all((root / s).is_dir() for s in SPLIT_NAMES):
        classes, sources, layout = _from_split_folders(root, split, "mini_imagenet", "mini_imagenet"), [], "folders"
    else:
        refuse_pickles(root, "miniImageNet", MINI_HOW_TO_GET)
        raise DataError(f"{root} is not a miniImageNet folder: it needs {MINI_LAYOUTS}", "data_dir")
    notes = count_warning({c.name: len(c.files) for c in classes}, MINI_PER_CLASS, "mini_imagenet")
    return _load("mini_imagenet", root, layout, classes, sources, split, image_size, cache_root, hooks, notes)


def load_tiered_imagenet(data_dir: Path | None, image_size: int = 84, cache_root: Path | None = None, hooks: Hooks = NO_HOOKS) -> ImageSet:
    """tieredImageNet (Ren et al.) with its 351 / 97 / 160 class split by super-category (the class groups)."""
    root = _root(data_dir, "tiered_imagenet", TIERED_LAYOUT, TIERED_HOW_TO_GET)
    split = read_split("tiered_imagenet")
    if not all((root / s).is_dir() for s in SPLIT_NAMES):
        refuse_pickles(root, "tieredImageNet", TIERED_HOW_TO_GET)
        raise DataError(f"{root} is not a tieredImageNet folder: it needs {TIERED_LAYOUT}", "data_dir")
    classes = _from_split_folders(root, split, "tiered_imagenet", "tiered_imagenet")
    return _load("tiered_imagenet", root, "folders", classes, [], split, image_size, cache_root, hooks, [])


def _root(data_dir: Path | None, name: str, layout: str, how_to_get: str) -> Path:
    if data_dir is None:
        raise DataError(f"{name} needs a data folder: a folder with {layout}", "data_dir")
    root = Path(data_dir).expanduser()
    if root.is_file() and root.suffix.lower() in (".pkl", ".pickle"):
        refuse_pickles(root.parent, name, how_to_get)
    if not root.is_dir():
        raise DataError(f"{name} folder {root} does not exist; point the data folder at a folder with {layout}", "data_dir")
    return root


def _from_csv(root: Path, split: StandardSplit) -> list[ClassFolder]:
    """Classes from Ravi & Larochelle's csv files (filename,label), each file checked to exist in images/."""
    present = {p.name for p in (root / "images").iterdir()}
    by_class: dict[str, list[str]] = {}
    for name in SPLIT_NAMES:
        rows = _csv_rows(root / f"{name}.csv")
        compare_classes({label for _, label in rows}, split.of(name), f"mini_imagenet {root / name}.csv", "use the csv files of the split")
        for filename, label in rows:
            by_class.setdefault(label, []).append(filename)
    missing = [f for files in by_class.values() for f in files if f not in present]
    if missing:
        total = sum(len(f) for f in by_class.values())
        raise DataError(
            f"{root / 'images'}: found {total - len(missing)} of the {total} images the csv files list; missing: {listed(missing)}"
        )
    return [ClassFolder(c, None, tuple(root / "images" / f for f in sorted(by_class[c]))) for c in split.classes]


def _csv_rows(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["filename", "label"]:
            raise DataError(f"{path} does not start with the header 'filename,label'; use the split's csv files")
        return [(row[0], row[1]) for row in reader if row]


def _from_split_folders(root: Path, split: StandardSplit, dataset: str, label: str) -> list[ClassFolder]:
    """Classes from train/ val/ test/ folders of class sub-folders, each folder checked against its split."""
    found: dict[str, ClassFolder] = {}
    for name in SPLIT_NAMES:
        folders = subfolders(root / name)
        compare_classes([f.name for f in folders], split.of(name), f"{label} {root / name}", f"{dataset} needs the published split")
        for folder in folders:
            files = image_files(folder)
            if not files:
                raise DataError(f"{folder} has no images; every class of the split needs its images")
            found[folder.name] = ClassFolder(folder.name, split.group_of(folder.name), tuple(files))
    return [found[c] for c in split.classes]


def _load(
    name: str,
    root: Path,
    layout: str,
    classes: list[ClassFolder],
    extra_sources: list[Path],
    split: StandardSplit,
    size: int,
    cache_root: Path | None,
    hooks: Hooks,
    notes: list[str],
) -> ImageSet:
    files = tuple(extra_sources) + tuple(f for c in classes for f in c.files)
    key = cache_key(dataset=name, root=str(root.resolve()), layout=layout, image_size=size, decoder=DECODER)
    source = Source(name, key, Sources(root, files), cache_root)
    splits = tuple(split.split_of(c.name) for c in classes)

    return load_cached(source, lambda: class_plan(name, root, classes, size, splits, IMAGENET_STATS, 3, tuple(notes)), hooks)
