"""CUB-200-2011 (Wah et al.) from its own folder, with the 100 / 50 / 50 species split of Chen et al. (2019)."""

from __future__ import annotations

from pathlib import Path

from core.data.base import IMAGENET_STATS, DataError, ImageSet
from core.data.cache import NO_HOOKS, Hooks, Source, cache_key, load_cached
from core.data.fingerprint import Sources
from core.data.folder import DECODER, ClassFolder, class_plan, image_files, subfolders
from core.data.splitfiles import compare_classes, listed, read_split

FOLDER = "CUB_200_2011"
LAYOUT = f"{FOLDER}'s images/ folder (one sub-folder per species, 001.Black_footed_Albatross/...) and classes.txt"
HOW_TO_GET = (
    "download CUB_200_2011.tgz from the Caltech-UCSD Birds-200-2011 page (www.vision.caltech.edu/datasets/cub_200_2011) and extract it"
)


def load_cub(data_dir: Path | None, image_size: int = 84, cache_root: Path | None = None, hooks: Hooks = NO_HOOKS) -> ImageSet:
    """CUB-200-2011: 11,788 images of 200 species, split 100 / 50 / 50 as in Chen et al.'s code.

    data_dir: the CUB_200_2011 folder or the folder holding it. classes.txt, the species folders
    under images/ and the split file must agree; images.txt, when present, must list exactly the images found.
    """
    root = _root(data_dir)
    split = read_split("cub")
    declared = _classes_txt(root / "classes.txt")
    folders = {f.name: f for f in subfolders(root / "images")}
    compare_classes(folders, declared, f"cub {root / 'images'} (against classes.txt)", "restore the images from CUB_200_2011.tgz")
    compare_classes(declared, split.classes, f"cub {root / 'classes.txt'}", "this is not CUB-200-2011's class list")
    classes = [ClassFolder(c, None, tuple(image_files(folders[c]))) for c in split.classes]
    _check_images_txt(root, classes)
    files = (root / "classes.txt", *(f for c in classes for f in c.files))
    key = cache_key(dataset="cub", root=str(root.resolve()), image_size=image_size, decoder=DECODER)
    source = Source("cub", key, Sources(root, files), cache_root)
    splits = tuple(split.split_of(c.name) for c in classes)
    return load_cached(source, lambda: class_plan("cub", root, classes, image_size, splits, IMAGENET_STATS, 3), hooks)


def _root(data_dir: Path | None) -> Path:
    if data_dir is None:
        raise DataError(f"cub needs a data folder: the {FOLDER} folder (with {LAYOUT}); {HOW_TO_GET}", "data_dir")
    given = Path(data_dir).expanduser()
    for root in (given, given / FOLDER):
        if (root / "images").is_dir() and (root / "classes.txt").is_file():
            return root
    if not given.is_dir():
        raise DataError(f"cub folder {given} does not exist; point the data folder at {FOLDER} ({HOW_TO_GET})", "data_dir")
    raise DataError(f"{given} is not a CUB-200-2011 folder: it needs {LAYOUT} (in it or in {FOLDER}/ below it); {HOW_TO_GET}", "data_dir")


def _classes_txt(path: Path) -> list[str]:
    """Species folder names from classes.txt ('1 001.Black_footed_Albatross' per line)."""
    names = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{number}: expected '<id> <folder name>', got {line!r}; restore classes.txt from CUB_200_2011.tgz")
        names.append(parts[1])
    return names


def _check_images_txt(root: Path, classes: list[ClassFolder]) -> None:
    """images.txt ('<id> <species>/<file>' per line) lists the dataset's images: every one must be there, and no other."""
    path = root / "images.txt"
    if not path.is_file():
        return
    listed_files = {line.split(maxsplit=1)[1].strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    found = {f"{c.name}/{f.name}" for c in classes for f in c.files}
    missing, extra = listed_files - found, found - listed_files
    if missing or extra:
        parts = [f"cub {root / 'images'}: found {len(found & listed_files)} of the {len(listed_files)} images images.txt lists"]
        parts += [f"missing: {listed(missing)}"] if missing else []
        parts += [f"extra: {listed(extra)}"] if extra else []
        raise DataError("; ".join([*parts, "restore the images from CUB_200_2011.tgz"]))
