"""Omniglot (Lake et al. 2015): handwritten characters grouped by alphabet, read straight from Lake's zips."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from core.data.base import DataError, ImageSet, cache_dir
from core.data.cache import NO_HOOKS, Decoder, Hooks, Plan, Source, cache_key, load_cached
from core.data.fingerprint import Sources
from core.data.images import RESAMPLE, flatten, open_image, to_array

ENV_VAR = "METASCOPE_OMNIGLOT"
LAKE_ZIPS = ("images_background.zip", "images_evaluation.zip", "images_background_small1.zip", "images_background_small2.zip")
TORCHVISION_FOLDER = "omniglot-py"  # what torchvision.datasets.Omniglot creates under its root
DECODER = "invert-lanczos-v2"  # in the cache key: change it when decoding changes what comes out
_CHARACTER = re.compile(r"character\d+")
_DRAWER = re.compile(r"\d+_(\d+)\.png", re.IGNORECASE)  # Lake's file names: <character id>_<drawer>.png
MAX_MEMBER_BYTES = 16 << 20  # an Omniglot PNG is ~1 KB; a larger zip member is not one and is not read into memory
HOW_TO_FIX = (
    "point the data folder at a folder holding Lake's zips (images_background.zip, images_evaluation.zip, "
    "images_background_small1.zip, images_background_small2.zip from github.com/brendenlake/omniglot) or their "
    "extracted folders, or download Omniglot on a machine with network access"
)

Key = tuple[str, str, str]  # (alphabet, character, file name)
Payload = bytes | Path  # an image's bytes from a zip, or its path in an extracted folder


def load_omniglot(
    data_dir: str | Path | None = None,
    image_size: int = 28,
    download: bool = False,
    cache_root: Path | None = None,
    hooks: Hooks = NO_HOOKS,
) -> ImageSet:
    """Load Omniglot as bright strokes on a dark background, decoded once and then cached.

    data_dir: a folder with Lake's zips, extracted Alphabet/characterNN/*.png folders, or
    torchvision's root (omniglot-py/...). None: $METASCOPE_OMNIGLOT, then <cache>/omniglot.
    An image present in several sources (Greek and Latin are in both minimal sets) counts once.
    Returns images uint8 (n, 1, image_size, image_size), class names "Alphabet/characterNN",
    class groups = alphabets, drawers (n,) from the file names (None if a name lacks one),
    all sorted by (alphabet, character, file).
    """
    sources = _resolve_sources(data_dir, download, cache_root)
    resolved = [str(s.resolve()) for s in sources]
    key = cache_key(dataset="omniglot", sources=resolved, image_size=image_size, decoder=DECODER, drawers=True)
    files = tuple(f for s in sources for f in ([s] if s.is_file() else sorted(_character_pngs(s))))
    source = Source("omniglot", key, Sources(Path(os.path.commonpath([s if s.is_dir() else s.parent for s in sources])), files), cache_root)
    return load_cached(source, lambda: _plan(sources, image_size), hooks)


def _resolve_sources(data_dir: str | Path | None, download: bool, cache_root: Path | None) -> list[Path]:
    """The zips or folders to read, downloading into the given or default place when asked."""
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.exists() and not download:
            raise DataError(f"Omniglot folder {folder} does not exist; {HOW_TO_FIX}", "data_dir")
        sources = _locate(folder)
        if sources:
            return sources
        if download:
            return _download(folder)
        raise DataError(f"no Omniglot images found in {folder} (no Lake zips, no Alphabet/characterNN/*.png); {HOW_TO_FIX}", "data_dir")
    return _default_sources(download, cache_root)


def _default_sources(download: bool, cache_root: Path | None) -> list[Path]:
    looked = []
    env = os.environ.get(ENV_VAR)
    if env:
        looked.append(f"${ENV_VAR}={env}")
        if sources := _locate(Path(env).expanduser()):
            return sources
    default = (cache_root or cache_dir()) / "omniglot"
    looked.append(str(default))
    if sources := _locate(default):
        return sources
    if download:
        return _download(default)
    raise DataError(f"Omniglot not found (looked in {' and '.join(looked)}); {HOW_TO_FIX}", "data_dir")


def _locate(path: Path) -> list[Path]:
    """Lake's zips in path or path/omniglot-py, else path itself if it holds extracted images.

    Zips win over extracted copies next to them: one file per set is cheaper to fingerprint and read.
    """
    if path.is_file():
        return [path] if path.suffix.lower() == ".zip" else []
    if not path.is_dir():
        return []
    for folder in (path, path / TORCHVISION_FOLDER):
        zips = [folder / name for name in LAKE_ZIPS if (folder / name).is_file()]
        if zips:
            return zips
    return [path] if next(_character_pngs(path), None) is not None else []


def _character_pngs(root: Path) -> Iterator[Path]:
    """Every .../characterNN/*.png under root (stray images elsewhere are not characters)."""
    return (p for p in root.rglob("*.png") if _CHARACTER.fullmatch(p.parent.name) and p.is_file())


def _download(root: Path) -> list[Path]:
    from torchvision.datasets import Omniglot

    root.mkdir(parents=True, exist_ok=True)
    try:
        for background in (True, False):
            Omniglot(str(root), background=background, download=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"downloading Omniglot into {root} failed ({exc}); check the network connection, or {HOW_TO_FIX}") from exc
    if sources := _locate(root):
        return sources
    raise DataError(f"the Omniglot download into {root} left no readable images; delete {root} and retry, or {HOW_TO_FIX}")


def _collect(sources: list[Path]) -> dict[Key, Payload]:
    """Every image by (alphabet, character, file); the first source holding a key wins."""
    members: dict[Key, Payload] = {}
    for source in sources:
        if source.is_file():
            _collect_zip(source, members)
        else:
            for path in _character_pngs(source):
                members.setdefault((path.parent.parent.name, path.parent.name, path.name), path)
    return members


def _collect_zip(path: Path, members: dict[Key, Payload]) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                parts = PurePosixPath(info.filename).parts
                if len(parts) < 3 or not parts[-1].lower().endswith(".png") or not _CHARACTER.fullmatch(parts[-2]):
                    continue
                key = (parts[-3], parts[-2], parts[-1])
                if key in members:  # read duplicates never: Greek and Latin are in both minimal sets
                    continue
                if info.file_size > MAX_MEMBER_BYTES:
                    raise DataError(f"{path} member {info.filename} is {info.file_size} bytes, not an Omniglot image; {HOW_TO_FIX}")
                members[key] = archive.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot read the Omniglot zip {path} ({exc}); download it again, or {HOW_TO_FIX}") from exc


def _decode(key: Key, payload: Payload, size: int) -> np.ndarray:
    """uint8 (1, size, size): strokes 255 on a 0 background, antialiased from 105x105."""
    try:
        image = flatten(open_image(payload)).convert("L")
    except Exception as exc:  # PIL raises many types for a damaged file; all mean the same thing here
        raise DataError(f"Omniglot image {'/'.join(key)} is unreadable ({exc}); download the data again") from exc
    return to_array(image.resize((size, size), RESAMPLE), channels=1, invert=True)


def _plan(sources: list[Path], size: int) -> Plan:
    """Every character image, sorted by (alphabet, character, file); decoded serially from memory.

    Serial on purpose: a 105x105 PNG decodes in ~0.1 ms, so threads only add GIL contention (measured slower).
    """
    members = _collect(sources)
    keys = sorted(members)
    classes = sorted({(alphabet, character) for alphabet, character, _ in keys})
    class_id = {cls: i for i, cls in enumerate(classes)}
    return Plan(
        items=keys,
        labels=[class_id[(alphabet, character)] for alphabet, character, _ in keys],
        class_names=tuple(f"{alphabet}/{character}" for alphabet, character in classes),
        prepare=lambda: Decoder((1, size, size), lambda key: _decode(key, members[key], size), workers=1),
        class_groups=tuple(alphabet for alphabet, _ in classes),
        source="omniglot: " + ", ".join(str(s) for s in sources),
        item_name="/".join,
        drawers=parse_drawers([name for _, _, name in keys]),
    )


def parse_drawers(file_names: list[str]) -> list[int] | None:
    """The drawer of each file `<character id>_<drawer>.png`; None when any name does not say."""
    matches = [_DRAWER.fullmatch(name) for name in file_names]
    if not matches or not all(matches):
        return None
    return [int(m.group(1)) for m in matches]
