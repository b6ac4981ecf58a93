"""Decoding image files into uint8 arrays of a fixed channel count and size."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

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

    Example::

        load_image("digit.png", channels=1, size=(28, 28)).shape
        # -> (1, 28, 28)
    """
    path = Path(path)
    if not path.is_file():
        raise NeuroclassError(f"{path}: file not found")
    try:
        return to_array(open_image(path), channels, size)
    except UnreadableImage as exc:
        raise NeuroclassError(f"{exc}; the file is not a readable image: pass a PNG, JPEG, BMP, GIF, "
                              "WebP or TIFF file") from None


GRAY_MODES = ("1", "L", "I", "I;16", "F")


def read_header(path: Path) -> tuple[str, tuple[int, int]]:
    """(PIL mode, (H, W)) from the file header alone: PIL reads no pixels until ``load()``.

    Example::

        read_header(Path("digit.png"))
        # -> ('L', (28, 28))
    """
    try:
        with Image.open(path) as img:
            return img.mode, (img.size[1], img.size[0])
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"{path}: {_reason(exc, path)}") from exc


def decode_into(paths: list[Path], channels: int | None, size: tuple[int, int] | None,
                max_bad_fraction: float, where: str, allocate: Callable[[tuple[int, ...]], np.ndarray]
                ) -> tuple[np.ndarray, list[int], dict, list[str]]:
    """Decode files one at a time into the uint8 array ``allocate((N, C, H, W))``, skipping
    unreadable ones.

    Two passes, so that no more than one decoded image is ever held: headers first (to count the
    files and, when not given, choose the channel count and the most common size), then each image
    is decoded, converted and resized straight into its row of the output. The output may be a
    memory-mapped file larger than memory. A file whose header reads but whose pixels do not is found
    only in the second pass, so the output can have unused rows at its end: rows ``len(kept):``.
    Such a file still counts in the size vote; every other rule matches :func:`decode_many`.

    Example::

        x, kept, prep, bad = decode_into(paths, None, (28, 28), 0.01, "pics",
                                         lambda shape: np.zeros(shape, np.uint8))
    """
    if not paths:
        raise NeuroclassError(f"{where}: no readable images found")
    headers, bad = {}, {}
    for i, path in enumerate(paths):
        try:
            headers[i] = read_header(path)
        except UnreadableImage as exc:
            bad[i] = str(exc)
    if not headers:
        _check_bad(list(bad.values()), len(paths), max_bad_fraction, where)
    if channels is None:
        channels = 1 if all(mode in GRAY_MODES for mode, _ in headers.values()) else 3
    if size is None:
        sizes = [hw for _, hw in headers.values()]
        size = max(set(sizes), key=sizes.count)  # the most common size; others are resized to it
    out = allocate((len(headers), channels, *size))
    kept = []
    for i in headers:
        try:
            out[len(kept)] = to_array(open_image(paths[i]), channels, size)
        except UnreadableImage as exc:
            bad[i] = str(exc)
            continue
        kept.append(i)
    messages = [bad[i] for i in sorted(bad)]  # path order, so that "first" is the first file listed
    _check_bad(messages, len(paths), max_bad_fraction, where)
    return out, kept, {"channels": channels, "size": list(size), "skipped": len(bad)}, messages


def decode_many(paths: list[Path], channels: int | None, size: tuple[int, int] | None,
                max_bad_fraction: float, where: str) -> tuple[np.ndarray, list[int], dict, list[str]]:
    """Decode files into memory, skipping unreadable ones; abort when more than ``max_bad_fraction``
    are bad.

    Returns (uint8 (N, C, H, W), indices of the paths kept, preprocessing record, one message per
    skipped file). The caller warns about the skipped files once its own checks have passed, so that
    a failing load prints its error alone.

    Example::

        x, kept, prep, bad = decode_many(paths, 1, (28, 28), 0.01, "pics")
    """
    out, kept, prep, bad = decode_into(paths, channels, size, max_bad_fraction, where, _in_memory)
    return out[:len(kept)], kept, prep, bad


def _in_memory(shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, dtype=np.uint8)


def _check_bad(bad: list[str], total: int, max_bad_fraction: float, where: str) -> None:
    """Abort when every file, or more than ``max_bad_fraction`` of them, is unreadable."""
    if not bad:
        return
    fraction = len(bad) / total
    if len(bad) == total:
        raise NeuroclassError(f"{where}: none of the {total} image files is readable, first: "
                              f"{bad[0]}; check that the files are PNG, JPEG, BMP, GIF, WebP or TIFF")
    if fraction > max_bad_fraction:
        raise NeuroclassError(
            f"{where}: {len(bad)} of {total} images are unreadable ({fraction:.1%}, more "
            f"than the {max_bad_fraction:.1%} allowed by data.max_bad_fraction), first: {bad[0]}; "
            f"remove or replace them, or allow more with --set data.max_bad_fraction="
            f"{_ceil_fraction(fraction):g}")


def _ceil_fraction(fraction: float) -> float:
    """The smallest of 0.01, 0.02, ... 0.99 that allows ``fraction``: a value to suggest to the user."""
    return min(0.99, math.ceil(fraction * 100) / 100)
