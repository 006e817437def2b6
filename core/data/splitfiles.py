"""The standard class splits of the named benchmarks, read from the small text files in core/data/splits/.

Each file starts with comment lines saying where its identifiers come from, then one class per line:
`split<TAB>class id[<TAB>group]`. Loaders compare what they find on disk with these lists and say
exactly which classes are missing or extra.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.data.base import SPLIT_NAMES, DataError

SPLIT_DIR = Path(__file__).with_name("splits")
SHOWN = 8  # identifiers named in a message before "and N more"


@dataclass(frozen=True)
class StandardSplit:
    """A benchmark's published class split: classes in file order, the split and (optional) group of each."""

    name: str
    origin: str  # the file's comment lines: where the identifiers come from
    classes: tuple[str, ...]
    splits: tuple[str, ...]
    groups: tuple[str, ...] | None

    def of(self, split: str) -> tuple[str, ...]:
        """The classes of one split, in file order."""
        return tuple(c for c, s in zip(self.classes, self.splits, strict=True) if s == split)

    def split_of(self, class_id: str) -> str:
        return self.splits[self.classes.index(class_id)]

    def group_of(self, class_id: str) -> str | None:
        return None if self.groups is None else self.groups[self.classes.index(class_id)]


@functools.cache
def read_split(name: str) -> StandardSplit:
    """The split file core/data/splits/<name>.tsv, checked: known split names, no class twice."""
    path = SPLIT_DIR / f"{name}.tsv"
    origin, rows = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("#"):
            origin.append(line.lstrip("# "))
        elif line.strip():
            fields = line.split("\t")
            if fields[0] not in SPLIT_NAMES or len(fields) not in (2, 3):
                raise DataError(f"{path}:{number}: expected 'split<TAB>class[<TAB>group]' with split in {SPLIT_NAMES}")
            rows.append(fields)
    classes = tuple(r[1] for r in rows)
    if len(set(classes)) != len(classes):
        raise DataError(f"{path} names a class twice; restore it from the project's repository")
    groups = tuple(r[2] for r in rows) if all(len(r) == 3 for r in rows) else None
    return StandardSplit(name, " ".join(origin), classes, tuple(r[0] for r in rows), groups)


def listed(names: Iterable[str]) -> str:
    """'a, b, c' or 'a, b, ... and 12 more', sorted."""
    names = sorted(names)
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def compare_classes(found: Iterable[str], expected: Iterable[str], where: str, fix: str) -> None:
    """DataError unless `found` is exactly `expected`: 'where: found 98 of the 100 classes of the split; missing: ...; extra: ...; fix'."""
    found, expected = set(found), set(expected)
    missing, extra = expected - found, found - expected
    if not missing and not extra:
        return
    parts = [f"{where}: found {len(found & expected)} of the {len(expected)} classes of the split"]
    if missing:
        parts.append(f"missing: {listed(missing)}")
    if extra:
        parts.append(f"extra (not in the split): {listed(extra)}")
    raise DataError("; ".join(parts + [fix]))


def count_warning(counts: dict[str, int], expected: int, dataset: str) -> list[str]:
    """A warning naming the classes whose image count differs from the benchmark's, or none."""
    off = {c: n for c, n in counts.items() if n != expected}
    if not off:
        return []
    shown = listed(f"{c}: {n}" for c, n in off.items())
    note = f"{len(off)} of {len(counts)} classes do not have the benchmark's {expected} images"
    return [f"{dataset}: {note} ({shown}); figures will not compare"]


def refuse_pickles(folder: Path, dataset: str, how_to_get: str) -> None:
    """DataError when `folder` (or a sub-folder) holds pickled arrays instead of images: loading a pickle can run any code."""
    if not folder.is_dir():
        return
    found = sorted({p.name for pattern in ("*.pkl", "*.pickle", "*/*.pkl", "*/*.pickle") for p in folder.glob(pattern)})
    if found:
        raise DataError(
            f"{folder} holds {listed(found)}: pickled arrays another library wrote. MetaScope does not load pickles "
            f"(loading one can run any code in it), so {dataset} needs the images themselves: {how_to_get}"
        )
