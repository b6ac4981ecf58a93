"""What an image folder holds, read from file headers before anything is decoded.

The time budget chooses the side images are decoded at (training/resolution.py) before the folder
is decoded, so it needs the folder's image count and typical size first. ``survey_folder`` lists
the folder as loading does (data/folder.py) and reads the headers of an evenly spread sample of
files: PIL reads no pixels until an image is loaded, so a survey of 400 photos takes milliseconds.

Example::

    s = survey_folder(Path("photos"))
    s.files, s.median_size, s.photo_like
    # -> (398, (375, 500), True)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroclass.data.folder import image_groups
from neuroclass.data.images import UnreadableImage, read_header
from neuroclass.data.pixels import DEFAULT_MAX_PIXELS, GRAY_MODES

SAMPLE = 256  # headers read at most: the sizes of a few hundred files describe a folder well
# images whose median shorter side is at least this many pixels are treated as photos (a chosen
# resolution, the photo family and augmentation), colour or gray (scans); smaller ones (icons,
# CIFAR-like 32 px, 28 px digits) keep their own size
PHOTO_SIDE = 96


@dataclass(frozen=True)
class FolderSurvey:
    """An image folder in numbers: ``files`` image files listed (``split_files``: how many in each
    split folder, under "" without split folders), ``channels`` 1 when every sampled header is gray else 3,
    the median size (H, W: the size of the image with the median shorter side) and the most common
    displayed size and the number of distinct sizes among the
    ``sampled`` headers, and ``sample``: up to 16 readable files spread over the folder (for timing
    the decoding)."""

    files: int
    split_files: dict  # {"train" | "val" | "test" | "": image files listed there}
    classes: int
    channels: int
    median_size: tuple[int, int]
    common_size: tuple[int, int]
    distinct_sizes: int
    sampled: int
    sample: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def short_side(self) -> int:
        """The median image's shorter side, pixels."""
        return min(self.median_size)

    @property
    def photo_like(self) -> bool:
        """Images whose median shorter side is at least PHOTO_SIDE pixels, colour or gray."""
        return self.short_side >= PHOTO_SIDE

    def split_sizes(self, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
        """(train, val, test) examples the split (data/split.py) will make, about: a split folder
        is kept, a missing test or val split is carved from train (test first)."""
        pool = self.split_files.get("train", self.split_files.get("", 0))
        test = self.split_files.get("test", round(pool * test_fraction))
        pool -= 0 if "test" in self.split_files else test
        val = self.split_files.get("val", round(pool * val_fraction))
        pool -= 0 if "val" in self.split_files else val
        return pool, val, test

    def record(self) -> dict:
        """JSON-ready numbers for the run's plan (timing.json)."""
        return {"files": self.files, "split_files": dict(self.split_files), "classes": self.classes,
                "channels": self.channels, "median_size": list(self.median_size),
                "common_size": list(self.common_size), "distinct_sizes": self.distinct_sizes,
                "sampled": self.sampled, "seconds": self.seconds}

    def describe(self) -> str:
        """'398 colour images, median 375x500 px, 167 sizes' (H x W as a viewer shows them)."""
        h, w = self.median_size
        kind = "colour" if self.channels == 3 else "gray"
        sizes = f", {self.distinct_sizes} sizes" if self.distinct_sizes > 1 else ""
        return f"{self.files:,} {kind} images, median {w}x{h} px{sizes}"


def survey_folder(root: Path, max_pixels: int = DEFAULT_MAX_PIXELS, clock=time.perf_counter
                  ) -> FolderSurvey | None:
    """The survey of the class-folder tree at ``root``; None when no sampled header reads (loading
    then reports the folder's problem in full). Raises what listing raises (NeuroclassError for a
    missing or empty folder, or no class folders)."""
    start = clock()
    groups = image_groups(root, [])
    paths = [p for files in groups.values() for images in files.values() for p in images]
    split_files = {split: sum(len(images) for images in files.values()) for split, files in groups.items()}
    classes = len({name for files in groups.values() for name in files})
    picked = np.unique(np.linspace(0, len(paths) - 1, min(SAMPLE, len(paths))).round().astype(int))
    modes, sizes, readable = [], [], []
    for i in picked:
        try:
            mode, size = read_header(paths[i], max_pixels)
        except UnreadableImage:
            continue
        modes.append(mode)
        sizes.append(size)
        readable.append(paths[i])
    if not sizes:
        return None
    by_short_side = sorted(sizes, key=min)
    median = by_short_side[len(by_short_side) // 2]  # an image's own size, whatever its orientation
    common = max(set(sizes), key=sizes.count)
    channels = 1 if all(mode in GRAY_MODES for mode in modes) else 3
    spread = readable[::max(1, len(readable) // 16)][:16]
    return FolderSurvey(len(paths), split_files, classes, channels, median, common, len(set(sizes)),
                        len(sizes), spread, clock() - start)

