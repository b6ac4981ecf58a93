"""A folder of class sub-folders of images, optionally split into train/ val/ test/."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from neuroclass.data.cache import load_or_build
from neuroclass.data.dataset import Dataset
from neuroclass.data.images import IMAGE_SUFFIXES, decode_many
from neuroclass.errors import NeuroclassError

SPLIT_NAMES = ("train", "val", "test")


def _class_files(root: Path) -> dict[str, list[Path]]:
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise NeuroclassError(f"{root}: no class sub-folders found; expected one folder per "
                              f"class (e.g. {root}/cat/*.png, {root}/dog/*.png)")
    files = {}
    for folder in classes:
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise NeuroclassError(f"{folder}: class folder has no images "
                                  f"({', '.join(sorted(IMAGE_SUFFIXES))}); add images or remove it")
        files[folder.name] = images
    return files


def load_image_folder(root: Path, channels: int | None, size: int | None,
                      max_bad_fraction: float, cache: bool = True) -> Dataset:
    """Decode every image once into a uint8 tensor; predefined splits become ``parts``.

    With ``cache`` the decoded images are stored once in a memory-mapped file (see data/cache.py)
    keyed by the files' names, sizes and mtimes and the preprocessing, so a second load decodes
    nothing; ``preprocessing["cache"]`` says "hit" or "built" and ``["cache_path"]`` where.

    Example::

        ds = load_image_folder(Path("pics"), channels=None, size=32, max_bad_fraction=0.01)
        ds.preprocessing["cache"]
        # -> 'built'
    """
    if not root.is_dir():
        raise NeuroclassError(f"{root}: not a folder")
    if not any(root.iterdir()):
        raise NeuroclassError(f"{root}: folder is empty; put one sub-folder of images per class in it")
    split_dirs = [s for s in SPLIT_NAMES if (root / s).is_dir()]
    if split_dirs and "train" not in split_dirs:
        raise NeuroclassError(f"{root}: has {', '.join(split_dirs)}/ but no train/ folder")
    groups = {s: _class_files(root / s) for s in split_dirs} or {"": _class_files(root)}
    classes = sorted(set().union(*[set(g) for g in groups.values()]))
    for split, files in groups.items():
        unknown = set(files) - set(groups[next(iter(groups))])
        if unknown:
            raise NeuroclassError(f"{root / split}: classes {sorted(unknown)} are not in train/")
    paths, labels, split_of = [], [], []
    for split, files in groups.items():
        for name, images in files.items():
            paths += images
            labels += [classes.index(name)] * len(images)
            split_of += [split] * len(images)
    fixed = (size, size) if size else None
    all_labels, all_splits = np.asarray(labels, dtype=np.int64), np.asarray(split_of)
    if cache:
        found = load_or_build(root, paths, all_labels, all_splits, classes, channels, fixed,
                              max_bad_fraction)
        x, y, split_arr, prep, bad = found.x, found.labels, found.splits, found.preprocessing, found.bad
    else:
        x, kept, prep, bad = decode_many(paths, channels, fixed, max_bad_fraction, str(root))
        y, split_arr = all_labels[kept], all_splits[kept]
    for split, files in groups.items():  # skipped files may have emptied a class folder
        left = set(y[split_arr == split].tolist())
        for name in files:
            if classes.index(name) not in left:
                raise NeuroclassError(f"{root / split / name}: no readable images left in this class "
                                      "folder (all were skipped as unreadable); add images or remove it")
    if bad:
        warnings.warn(f"{root}: skipped {len(bad)} of {len(paths)} images as unreadable, first: {bad[0]}",
                      stacklevel=3)
    parts = {s: np.flatnonzero(split_arr == s) for s in split_dirs}
    return Dataset(torch.from_numpy(x), torch.from_numpy(y), classes, name=root.name, kind="image",
                   source=str(root), parts=parts, preprocessing=prep, skipped=prep["skipped"])
