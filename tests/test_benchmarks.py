"""The named benchmarks on generated trees in each layout, with the real split files' identifiers."""

from __future__ import annotations

import csv
import os
import pickle
import re
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.config import LearnerConfig
from core.data import load_dataset, split_classes
from core.data.base import CIFAR100_STATS, IMAGENET_STATS, DataError
from core.data.splitfiles import read_split
from core.episodes import ClassPool, EpisodeSampler
from core.learners import make_learner

SIZE = 16  # small images keep the decoding of a few hundred files fast


def _image(path: Path, seed: int, size: int = 12, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, format=fmt)


def _mini_csv(root: Path, per_class: int = 2) -> Path:
    """Ravi & Larochelle's layout: images/ flat, train.csv / val.csv / test.csv (filename,label)."""
    split = read_split("mini_imagenet")
    for name in ("train", "val", "test"):
        rows = [(f"{wnid}{i:08d}.jpg", wnid) for wnid in split.of(name) for i in range(1, per_class + 1)]
        for filename, _ in rows:
            _image(root / "images" / filename, zlib.crc32(filename.encode()), fmt="JPEG")
        with open(root / f"{name}.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([("filename", "label"), *rows])
    return root


def _split_folders(root: Path, split_name: str, per_class: int = 2) -> Path:
    """train/ val/ test/ folders of class sub-folders of tiny PNGs."""
    split = read_split(split_name)
    for cls, part in zip(split.classes, split.splits, strict=True):
        for i in range(per_class):
            _image(root / part / cls / f"{i}.png", zlib.crc32(f"{cls}{i}".encode()))
    return root


@pytest.fixture(scope="module")
def mini_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _mini_csv(tmp_path_factory.mktemp("mini") / "mini-imagenet")


def test_mini_imagenet_csv_layout_lands_the_published_split(mini_csv: Path):
    image_set = load_dataset("mini_imagenet", mini_csv, SIZE)
    split, wanted = split_classes(image_set, seed=123), read_split("mini_imagenet")
    assert image_set.images.shape == (200, 3, SIZE, SIZE) and image_set.normalisation == IMAGENET_STATS
    for name in ("train", "val", "test"):
        assert [image_set.class_names[c] for c in split.classes(name)] == list(wanted.of(name))
    assert (len(split.train), len(split.val), len(split.test)) == (64, 16, 20)
    assert image_set.class_counts().tolist() == [2] * 100
    assert any("100 of 100 classes do not have the benchmark's 600 images" in w for w in image_set.warnings)


def test_mini_imagenet_both_layouts_give_the_same_classes(mini_csv: Path, tmp_path: Path):
    split = read_split("mini_imagenet")
    for cls, part in zip(split.classes, split.splits, strict=True):  # the same JPEGs, regrouped by split and class
        (tmp_path / "m" / part / cls).mkdir(parents=True)
        for f in (mini_csv / "images").glob(f"{cls}*.jpg"):
            shutil.copy(f, tmp_path / "m" / part / cls / f.name)
    flat, folders = load_dataset("mini_imagenet", mini_csv, SIZE), load_dataset("mini_imagenet", tmp_path / "m", SIZE)
    assert folders.class_names == flat.class_names and folders.class_splits == flat.class_splits
    assert torch.equal(folders.images, flat.images)


def test_a_missing_class_is_named(tmp_path: Path):
    root = _split_folders(tmp_path / "mini", "mini_imagenet", per_class=1)
    shutil.rmtree(root / "train" / "n01532829")
    message = f"mini_imagenet {root / 'train'}: found 63 of the 64 classes of the split; missing: n01532829; "
    with pytest.raises(DataError, match=re.escape(message) + "mini_imagenet needs the published split"):
        load_dataset("mini_imagenet", root, SIZE)


def test_a_class_in_the_wrong_split_is_missing_there_and_extra_here(tmp_path: Path):
    root = _split_folders(tmp_path / "mini", "mini_imagenet", per_class=1)
    (root / "val" / "n01855672").rename(root / "train" / "n01855672")
    with pytest.raises(DataError, match=re.escape("found 64 of the 64 classes of the split; extra (not in the split): n01855672")):
        load_dataset("mini_imagenet", root, SIZE)


def test_csv_layout_names_missing_images(mini_csv: Path, tmp_path: Path):
    shutil.copytree(mini_csv, tmp_path / "m")
    (tmp_path / "m" / "images" / "n0153282900000002.jpg").unlink()
    with pytest.raises(DataError, match=r"found 199 of the 200 images the csv files list; missing: n0153282900000002\.jpg"):
        load_dataset("mini_imagenet", tmp_path / "m", SIZE)


def test_wrong_layout_says_what_it_needs(tmp_path: Path):
    _image(tmp_path / "stuff" / "a" / "x.png", 0)
    with pytest.raises(DataError, match=r"stuff is not a miniImageNet folder: it needs images/ .* or train/, val/ and test/ folders"):
        load_dataset("mini_imagenet", tmp_path / "stuff", SIZE)
    with pytest.raises(DataError, match="tiered_imagenet needs a data folder"):
        load_dataset("tiered_imagenet", None, SIZE)


class _RunsCode:
    """Unpickling this runs a command: what a malicious 'dataset cache' would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_caches_are_refused_with_how_to_get_the_images(tmp_path: Path):
    marker = tmp_path / "pwned"
    (tmp_path / "mini").mkdir()
    for name in ("train", "val", "test"):
        (tmp_path / "mini" / f"mini-imagenet-cache-{name}.pkl").write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(DataError, match=r"holds mini-imagenet-cache-test\.pkl, .*does not load pickles.*ILSVRC-2012.*meta-learning-lstm"):
        load_dataset("mini_imagenet", tmp_path / "mini", SIZE)
    with pytest.raises(DataError, match="does not load pickles"):
        load_dataset("mini_imagenet", tmp_path / "mini" / "mini-imagenet-cache-train.pkl", SIZE)
    (tmp_path / "tiered").mkdir()
    (tmp_path / "tiered" / "train_images_png.pkl").write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(DataError, match="train_images_png.pkl.*does not load pickles.*few-shot-ssl-public"):
        load_dataset("tiered_imagenet", tmp_path / "tiered", SIZE)
    assert not marker.exists()


def test_tiered_imagenet_split_and_super_categories(tmp_path: Path):
    root = _split_folders(tmp_path / "tiered", "tiered_imagenet", per_class=1)
    image_set = load_dataset("tiered_imagenet", root, SIZE)
    split = split_classes(image_set)
    assert (len(split.train), len(split.val), len(split.test)) == (351, 97, 160)
    groups = {image_set.class_groups[c] for c in split.test}
    assert len(groups) == 8 and len({image_set.class_groups[c] for c in split.train}) == 20
    assert image_set.class_groups[image_set.class_names.index("n01530575")] == "n01524359 passerine"


def _cifar_arrays(per_class: int = 3, seed: int = 0) -> tuple[np.ndarray, list[int], list[int]]:
    """Images (n, 3072) with fine and coarse labels as CIFAR-100 numbers them (alphabetical)."""
    names = read_split("cifar_fs")
    fine_names, coarse_names = sorted(names.classes), sorted(set(names.groups))
    fine = [f for f in range(100) for _ in range(per_class)]
    coarse = [coarse_names.index(names.group_of(fine_names[f])) for f in fine]
    data = np.random.default_rng(seed).integers(0, 256, (len(fine), 3072), dtype=np.uint8)
    return data, fine, coarse


def _cifar_python(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, seed in (("train", 0), ("test", 1)):
        data, fine, coarse = _cifar_arrays(per_class=2 if name == "train" else 1, seed=seed)
        batch = {b"data": data, b"fine_labels": fine, b"coarse_labels": coarse, b"filenames": [b"x.png"] * len(fine)}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def _cifar_binary(root: Path, python_root: Path) -> Path:
    folder = root / "cifar-100-binary"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        with open(python_root / "cifar-100-python" / name, "rb") as handle:
            batch = pickle.load(handle)  # our own test file: safe to unpickle here
        records = np.concatenate(
            [np.array(batch[b"coarse_labels"], np.uint8)[:, None], np.array(batch[b"fine_labels"], np.uint8)[:, None], batch[b"data"]], 1
        )
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    return root


def test_cifar_fs_from_torchvision_folder(tmp_path: Path):
    root = _cifar_python(tmp_path / "c")
    image_set = load_dataset("cifar_fs", root)  # default size: CIFAR's own 32
    split, wanted = split_classes(image_set), read_split("cifar_fs")
    assert image_set.images.shape == (300, 3, 32, 32) and image_set.normalisation == CIFAR100_STATS
    assert [image_set.class_names[c] for c in split.test] == list(wanted.of("test")) and len(split.train) == 64
    whale = image_set.class_names.index("whale")
    assert image_set.class_groups[whale] == "aquatic_mammals" and image_set.class_splits[whale] == "test"
    data, fine, _ = _cifar_arrays(per_class=2, seed=0)  # pixels unchanged at 32 px: the first train image of "apple" (fine 0)
    apple = image_set.images[image_set.indices_of(image_set.class_names.index("apple"))[0]]
    assert torch.equal(apple, torch.from_numpy(data[0].reshape(3, 32, 32)))


def test_fc100_splits_by_super_class(tmp_path: Path):
    image_set = load_dataset("fc100", _cifar_python(tmp_path / "c"), 32)
    split = split_classes(image_set)
    assert (len(split.train), len(split.val), len(split.test)) == (60, 20, 20)
    assert {image_set.class_groups[c] for c in split.test} == {"aquatic_mammals", "insects", "medium_mammals", "people"}
    assert {image_set.class_groups[c] for c in split.val} == {
        "large_carnivores", "large_omnivores_and_herbivores", "non-insect_invertebrates", "small_mammals"
    }  # fmt: skip


def test_cifar_binary_version_matches_the_python_one(tmp_path: Path):
    python = _cifar_python(tmp_path / "p")
    binary = _cifar_binary(tmp_path / "b", python)
    a, b = load_dataset("cifar_fs", python, 20), load_dataset("cifar_fs", binary, 20)
    assert torch.equal(a.images, b.images) and a.class_names == b.class_names


def test_cifar_pickle_that_would_run_code_is_refused(tmp_path: Path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "c" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        (folder / name).write_bytes(pickle.dumps({b"data": _RunsCode(marker)}, protocol=2))
    with pytest.raises(DataError, match=r"cifar-100-python/train is not a CIFAR-100 batch file \(it refers to (posix|os)\.system"):
        load_dataset("cifar_fs", tmp_path / "c")
    assert not marker.exists()


def test_cifar_absent_says_how_to_get_it(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no CIFAR-100 found in .*empty.*cifar-100-python.*core download cifar_fs"):
        load_dataset("cifar_fs", tmp_path / "empty")


def _cub(root: Path) -> Path:
    cub = root / "CUB_200_2011"
    classes = sorted(read_split("cub").classes)
    lines, images = [], []
    for i, cls in enumerate(classes, 1):
        lines.append(f"{i} {cls}")
        for k in range(2):
            _image(cub / "images" / cls / f"{cls.split('.')[1]}_{k}.jpg", i * 10 + k, fmt="JPEG")
            images.append(f"{len(images) + 1} {cls}/{cls.split('.')[1]}_{k}.jpg")
    (cub / "classes.txt").write_text("\n".join(lines) + "\n")
    (cub / "images.txt").write_text("\n".join(images) + "\n")
    return root


def test_cub_uses_chens_split(tmp_path: Path):
    root = _cub(tmp_path / "data")
    image_set = load_dataset("cub", root, SIZE)  # the folder holding CUB_200_2011 works, as does CUB_200_2011 itself
    split = split_classes(image_set)
    assert (len(split.train), len(split.val), len(split.test)) == (100, 50, 50)
    where = dict(zip(image_set.class_names, image_set.class_splits, strict=True))
    assert (where["001.Black_footed_Albatross"], where["002.Laysan_Albatross"], where["004.Groove_billed_Ani"]) == ("train", "val", "test")
    assert load_dataset("cub", root / "CUB_200_2011", SIZE).class_names == image_set.class_names


def test_cub_missing_species_and_images(tmp_path: Path):
    root = _cub(tmp_path / "data") / "CUB_200_2011"
    (root / "images" / "003.Sooty_Albatross" / "Sooty_Albatross_1.jpg").unlink()
    missing = "found 399 of the 400 images images.txt lists; missing: 003.Sooty_Albatross/Sooty_Albatross_1.jpg"
    with pytest.raises(DataError, match=re.escape(missing)):
        load_dataset("cub", root, SIZE)
    shutil.rmtree(root / "images" / "003.Sooty_Albatross")
    with pytest.raises(DataError, match=r"found 199 of the 200 classes of the split; missing: 003\.Sooty_Albatross"):
        load_dataset("cub", root, SIZE)


@pytest.mark.parametrize("backbone", ["conv4", "resnet12"])
def test_both_backbones_train_on_84_pixel_colour(mini_csv: Path, backbone: str):
    image_set = load_dataset("mini_imagenet", mini_csv)  # default size 84
    assert image_set.image_shape == (3, 84, 84)
    pool = ClassPool(image_set, split_classes(image_set).classes("train"))
    episode = EpisodeSampler(pool, 5, 1, 1, seed=0).sample()
    raw = image_set.images[episode.support_idx].float() / 255  # the normalisation is applied where images become floats
    mean, std = torch.tensor(IMAGENET_STATS.mean).view(3, 1, 1), torch.tensor(IMAGENET_STATS.std).view(3, 1, 1)
    torch.testing.assert_close(episode.support_x, (raw - mean) / std)
    torch.manual_seed(0)
    learner = make_learner(LearnerConfig(method="protonet", backbone=backbone), 3, 84)
    loss, logits = learner.episode_loss(episode.support_x, episode.support_y, episode.query_x, episode.query_y)
    loss.backward()
    assert logits.shape == (5, 5)
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in learner.parameters() if p.grad is not None)
