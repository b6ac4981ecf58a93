"""A folder of class sub-folders of images, optionally split into train/ val/ test/."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from neuroclass.data.cache import load_or_build
from neuroclass.data.dataset import Dataset
from neuroclass.data.images import IMAGE_SUFFIXES, decode_many, name_files
from neuroclass.data.issues import DataIssues, FileIssue
from neuroclass.data.listing import class_images, subfolders, summary
from neuroclass.data.pixels import DecodeSettings
from neuroclass.errors import NeuroclassError, counted

SPLIT_NAMES = ("train", "val", "test")


def _class_files(root: Path, ignored: list[FileIssue]) -> dict[str, list[Path]]:
    classes = subfolders(root, None, ignored)
    if not classes:
        raise NeuroclassError(f"{root}: no class sub-folders found; expected one folder per "
                              f"class (e.g. {root}/cat/*.png, {root}/dog/*.png)")
    files = {}
    for folder in classes:
        images = class_images(folder, IMAGE_SUFFIXES, ignored)
        if not images:
            raise NeuroclassError(f"{folder}: class folder has no images "
                                  f"({', '.join(sorted(IMAGE_SUFFIXES))}); add images or remove it")
        files[folder.name] = images
    return files


def image_groups(root: Path, ignored: list[FileIssue]) -> dict[str, dict[str, list[Path]]]:
    """{split ("" without split folders): {class: image paths}}; metadata and other files that
    are not data are appended to ``ignored``."""
    if not root.is_dir():
        raise NeuroclassError(f"{root}: not a folder")
    if not any(root.iterdir()):
        raise NeuroclassError(f"{root}: folder is empty; put one sub-folder of images per class in it")
    split_dirs = [s for s in SPLIT_NAMES if (root / s).is_dir()]
    if split_dirs and "train" not in split_dirs:
        raise NeuroclassError(f"{root}: has {', '.join(split_dirs)}/ but no train/ folder")
    if not split_dirs:
        return {"": _class_files(root, ignored)}
    subfolders(root, SPLIT_NAMES, ignored)  # records what sits beside train/ val/ test/
    return {s: _class_files(root / s, ignored) for s in split_dirs}


def load_image_folder(root: Path, channels: int | None, size: int | None,
                      max_bad_fraction: float, cache: bool = True,
                      decode: DecodeSettings = DecodeSettings(), workers: int | None = None) -> Dataset:
    """Decode every image once into a uint8 tensor; predefined splits become ``parts``.

    Files that are not data (operating-system and tool metadata at any depth, non-image files in
    class folders: data/listing.py) are left out and listed in ``ds.issues.ignored``; unreadable
    files are skipped (``ds.issues.skipped``; more than ``max_bad_fraction`` of them raise);
    warnings raised while reading a file go to ``ds.issues.warnings``, each naming its file. Each of
    the three, when not empty, is one UserWarning line, issued once the load has succeeded.
    Pixels are decoded as a viewer shows them, with ``decode`` (data/pixels.py), recorded in
    ``preprocessing["decode"]``; with ``size``, every image is brought to size x size by its aspect
    rule (without, to the most common size, by the same rule). Files decode on ``workers`` threads
    (None: the usable cores, at most 8; 1: one at a time), with the same result whatever the count.

    With ``cache`` the decoded images are stored once in a memory-mapped file (see data/cache.py)
    keyed by the files' names, sizes and mtimes and the preprocessing, so a second load decodes
    nothing; ``preprocessing["cache"]`` says "hit" or "built" and ``["cache_path"]`` where.

    Example::

        ds = load_image_folder(Path("pics"), channels=None, size=32, max_bad_fraction=0.01)
        ds.preprocessing["cache"]
        # -> 'built'
    """
    ignored: list[FileIssue] = []
    groups = image_groups(root, ignored)
    split_dirs = [s for s in groups if s]
    classes = sorted(set().union(*[set(g) for g in groups.values()]))
    paths, labels, split_of = _flatten(root, groups, classes)
    fixed = (size, size) if size else None
    all_labels, all_splits = np.asarray(labels, dtype=np.int64), np.asarray(split_of)
    if cache:
        found = load_or_build(root, paths, all_labels, all_splits, classes, channels, fixed,
                              max_bad_fraction, decode, workers)
        x, y, split_arr, prep = found.x, found.labels, found.splits, found.preprocessing
        skipped, warned = found.skipped, found.warned
    else:
        done = decode_many(paths, channels, fixed, max_bad_fraction, str(root), decode, workers)
        x, prep, skipped, warned = done.x, done.preprocessing, done.skipped, done.warned
        y, split_arr = all_labels[done.kept], all_splits[done.kept]
    issues = DataIssues(ignored=ignored, skipped=skipped, warnings=warned)
    for split, files in groups.items():  # skipped files may have emptied a class folder
        left = set(y[split_arr == split].tolist())
        for name in files:
            if classes.index(name) not in left:
                raise NeuroclassError(f"{root / split / name}: no readable images left in this class "
                                      "folder (all were skipped as unreadable); add images or remove it")
    for line in _warning_lines(root, issues, len(paths)):
        warnings.warn(line, stacklevel=3)
    parts = {s: np.flatnonzero(split_arr == s) for s in split_dirs}
    return Dataset(torch.from_numpy(x), torch.from_numpy(y), classes, name=root.name, kind="image",
                   source=str(root), parts=parts, preprocessing=prep, skipped=prep["skipped"],
                   issues=issues)


def _flatten(root: Path, groups: dict[str, dict[str, list[Path]]], classes: list[str]
             ) -> tuple[list[Path], list[int], list[str]]:
    """(paths, class index of each, split of each) in split, class, path order."""
    paths, labels, split_of = [], [], []
    train = next(iter(groups))
    for split, files in groups.items():
        unknown = sorted(set(files) - set(groups[train]))
        if unknown:
            raise NeuroclassError(_unknown_classes(root, split, train, unknown))
        for name, images in files.items():
            paths += images
            labels += [classes.index(name)] * len(images)
            split_of += [split] * len(images)
    return paths, labels, split_of


def _unknown_classes(root: Path, split: str, train: str, unknown: list[str]) -> str:
    """The error for class folders of ``split`` that ``train`` lacks, with the two fixes."""
    one = len(unknown) == 1
    names = ", ".join(repr(name) for name in unknown)
    folders = ", ".join(str(root / split / name) for name in unknown[:3]) + (
        f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
    return (f"{root / split}: class{'' if one else 'es'} {names} {'is' if one else 'are'} not in "
            f"{train}/, so the model could never predict {'it' if one else 'them'}; add {train}/ "
            f"examples of {'it' if one else 'them'} (e.g. {root / train / unknown[0]}/), or remove "
            f"the folder{'' if one else 's'} {folders}")


def _warning_lines(root: Path, issues: DataIssues, files: int) -> list[str]:
    """One line for the ignored files, one for the skipped ones, one for the warnings PIL raised
    while reading; the first few skipped files and warnings named (ds.issues lists them all)."""
    lines = [summary(str(root), issues.ignored)] if issues.ignored else []
    if issues.skipped:
        lines.append(f"{root}: skipped {len(issues.skipped):,} of {counted(files, 'image')} as "
                     f"unreadable: {name_files(issues.skipped)}")
    if issues.warnings:
        lines.append(f"{root}: {len(issues.warnings)} warning{'s' * (len(issues.warnings) > 1)} "
                     f"while reading images (the images were used as read): {name_files(issues.warnings)}")
    return lines
