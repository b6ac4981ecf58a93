"""Decoding image files into uint8 arrays of a fixed channel count and size."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from neuroclass.errors import NeuroclassError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class UnreadableImage(Exception):
    """A file that PIL cannot decode; callers count these and decide whether to abort."""


def open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"{path}: {_reason(exc, path)}") from exc


def _reason(exc: Exception, path: Path) -> str:
    """PIL's message on one line, without the file name it often repeats."""
    text = " ".join(str(exc).split()).replace(f" {str(path)!r}", "").replace(str(path), "the file")
    return text or type(exc).__name__


def to_array(img: Image.Image, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """PIL image -> uint8 (C, H, W), converted to 1 (L) or 3 (RGB) channels, resized to (H, W)."""
    img = img.convert("L" if channels == 1 else "RGB")
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_image(path: str | Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """One file -> uint8 (C, H, W); a clear error for a missing or corrupt file.

    >>> load_image("digit.png", channels=1, size=(28, 28)).shape  # doctest: +SKIP
    (1, 28, 28)
    """
    path = Path(path)
    if not path.is_file():
        raise NeuroclassError(f"{path}: file not found")
    try:
        return to_array(open_image(path), channels, size)
    except UnreadableImage as exc:
        raise NeuroclassError(f"{exc}; the file is not a readable image: pass a PNG, JPEG, BMP, GIF, "
                              "WebP or TIFF file") from None


def decode_many(paths: list[Path], channels: int | None, size: tuple[int, int] | None,
                max_bad_fraction: float, where: str) -> tuple[np.ndarray, list[int], dict, list[str]]:
    """Decode files, skipping unreadable ones; abort when more than ``max_bad_fraction`` are bad.

    Returns (uint8 (N, C, H, W), indices of the paths kept, preprocessing record, one message per
    skipped file). The caller warns about the skipped files once its own checks have passed, so that
    a failing load prints its error alone.
    """
    images, kept, bad = [], [], []
    for i, path in enumerate(paths):
        try:
            images.append(open_image(path))
            kept.append(i)
        except UnreadableImage as exc:
            bad.append(str(exc))
    if bad:
        fraction = len(bad) / len(paths)
        if len(bad) == len(paths):
            raise NeuroclassError(f"{where}: none of the {len(paths)} image files is readable, first: "
                                  f"{bad[0]}; check that the files are PNG, JPEG, BMP, GIF, WebP or TIFF")
        if fraction > max_bad_fraction:
            raise NeuroclassError(
                f"{where}: {len(bad)} of {len(paths)} images are unreadable ({fraction:.1%}, more "
                f"than the {max_bad_fraction:.1%} allowed by data.max_bad_fraction), first: {bad[0]}; "
                f"remove or replace them, or allow more with --set data.max_bad_fraction="
                f"{_ceil_fraction(fraction):g}")
    if not images:
        raise NeuroclassError(f"{where}: no readable images found")
    if channels is None:
        gray = all(img.mode in ("1", "L", "I", "I;16", "F") for img in images)
        channels = 1 if gray else 3
    if size is None:
        sizes = [(img.size[1], img.size[0]) for img in images]  # (H, W)
        size = max(set(sizes), key=sizes.count)  # the most common size; others are resized to it
    arrays = np.stack([to_array(img, channels, size) for img in images])
    return arrays, kept, {"channels": channels, "size": list(size), "skipped": len(bad)}, bad


def _ceil_fraction(fraction: float) -> float:
    """The smallest of 0.01, 0.02, ... 0.99 that allows ``fraction``: a value to suggest to the user."""
    return min(0.99, math.ceil(fraction * 100) / 100)
