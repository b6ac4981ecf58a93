"""Decoding image files into uint8 arrays of a fixed channel count and size.

``decode_file`` is the one decoder of image files: training folders and the decoded-image cache
(through ``decode_into``, on a pool of threads), evaluation and prediction (through ``read_image``)
all call it, so a file becomes the same pixels everywhere. It refuses a file larger than
``data.max_pixels`` from its header alone, turns the pixels into what a viewer shows
(data/pixels.py) and brings them to the target size by the recorded aspect rule (data/aspect.py);
the warnings PIL raised while reading are returned, each naming the file.
"""
from __future__ import annotations

import math
import struct
import warnings
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from neuroclass.data.issues import FileIssue
from neuroclass.data.parallel import FileWarnings, decode_workers, ordered_map
from neuroclass.data.paths import missing_file
from neuroclass.data.pixels import GRAY_MODES, DecodeSettings, displayed_size
from neuroclass.data.sniff import ends_early, image_format, not_an_image_reason, truncated_reason
from neuroclass.errors import NeuroclassError, counted

# still-image formats Pillow reads (JPEG 2000 and AVIF need its optional codecs, in its wheels)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                  ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".qoi", ".jp2", ".j2k", ".avif"}
CODE_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning)
PIL_ERRORS = (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError)


class UnreadableImage(Exception):
    """A file that cannot be decoded: ``path`` and a one-line ``reason``; callers count these and
    decide whether to abort."""

    def __init__(self, path: Path, reason: str, not_image: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason
        self.not_image = not_image  # not an image at all (rather than empty, cut off or too large)

    def issue(self) -> FileIssue:
        return FileIssue(str(self.path), self.reason)


def open_image(path: Path, max_pixels: int,
               before_load: Callable[[Image.Image], None] | None = None) -> Image.Image:
    """The loaded PIL image of ``path``; UnreadableImage when it is not an image, is larger than
    ``max_pixels`` (checked from the header, before any pixel is decoded) or its pixels fail.
    ``before_load(img)`` may set how the opened image decodes (``DecodeSettings.draft``)."""
    try:
        with Image.open(path) as img:
            _check_pixels(path, img.size, max_pixels)
            fmt = img.format
            if before_load is not None:
                before_load(img)
            try:
                img.load()  # the pixels are in memory: the image outlives the closed file
            except PIL_ERRORS as exc:
                raise UnreadableImage(path, _load_reason(exc, path, fmt)) from exc
            return img  # not a copy, which would drop the format and TIFF tags to_8_bits reads
    except UnreadableImage:
        raise
    except PIL_ERRORS as exc:
        raise _open_failure(path, exc) from exc


def _open_failure(path: Path, exc: Exception) -> UnreadableImage:
    """The UnreadableImage for a file PIL could not open (its header did not read)."""
    if isinstance(exc, Image.DecompressionBombError):
        size = refused_size(path)
        said = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels is" if size else "more pixels are"
        return UnreadableImage(path, f"{said} over {2 * Image.MAX_IMAGE_PIXELS:,}, the most Pillow decodes "
                               "(it refuses larger files as possible decompression bombs); shrink the image")
    announced = image_format(path)  # an image whose header was cut off or damaged
    if announced:
        return UnreadableImage(path, _load_reason(exc, path, announced))
    described = not_an_image_reason(path)
    if described and not described.startswith("not a"):  # empty, or an image Pillow cannot read
        return UnreadableImage(path, described)
    return UnreadableImage(path, described or _reason(exc, path), not_image=True)


def refused_size(path: Path) -> tuple[int, int] | None:
    """(W, H) from the header of a file ``Image.open`` refused as too large, read by the first of
    PIL's format readers (``Image.ID``, ``Image.OPEN``, in the order ``Image.open`` tries them)
    that accepts it: a reader alone does not check the size, and decodes no pixels."""
    with open(path, "rb") as fp:
        prefix = fp.read(16)
        for name in Image.ID:
            factory, accept = Image.OPEN[name]
            accepted = accept(prefix) if accept else True
            if not accepted or isinstance(accepted, (str, bytes)):  # a str: a reason to refuse
                continue
            try:
                fp.seek(0)
                return factory(fp, str(path)).size
            except (*PIL_ERRORS, IndexError, TypeError, struct.error):
                continue
    return None


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    pixels = size[0] * size[1]
    if pixels > max_pixels:
        raise UnreadableImage(path, f"{size[0]}x{size[1]} = {pixels:,} pixels is over the limit of "
                              f"{max_pixels:,} (data.max_pixels); shrink the image, or raise the limit "
                              f"when training with --set data.max_pixels={pixels}")


def _load_reason(exc: Exception, path: Path, fmt: str | None) -> str:
    """Why the data of an image in format ``fmt`` failed: cut off, or damaged in PIL's words."""
    if fmt and ends_early(path, fmt):
        return truncated_reason(fmt)
    return f"the {fmt} data is damaged ({_reason(exc, path)})" if fmt else _reason(exc, path)


def _reason(exc: Exception, path: Path) -> str:
    """PIL's message on one line, without the file name it often repeats."""
    text = " ".join(str(exc).split()).replace(f" {str(path)!r}", "").replace(str(path), "the file")
    return text or type(exc).__name__


def to_array(img: Image.Image, channels: int, size: tuple[int, int] | None,
             decode: DecodeSettings) -> np.ndarray:
    """An "L" or "RGB" image -> uint8 (C, H, W), converted to 1 (L) or 3 (RGB) channels and
    brought to (H, W) by ``decode``'s aspect rule (``size`` None: as it is)."""
    img = img.convert("L" if channels == 1 else "RGB")
    if size is not None:
        img = decode.fit(img, size)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode_file(path: Path, channels: int, size: tuple[int, int] | None,
                decode: DecodeSettings) -> np.ndarray:
    """One file -> uint8 (C, H, W) as a viewer shows it, at ``size`` by the aspect rule. Warnings
    go to the caller's handling: ``read_image`` for one file, ``FileWarnings`` for many. Only the
    decoded image of this file is held, and only until it is resized. Raises UnreadableImage."""
    img = open_image(path, decode.max_pixels, lambda opened: decode.draft(opened, size))
    try:
        return to_array(decode.pixels(img), channels, size, decode)
    except PIL_ERRORS as exc:
        raise UnreadableImage(path, _reason(exc, path)) from exc


def read_image(path: Path, channels: int, size: tuple[int, int] | None,
               decode: DecodeSettings) -> tuple[np.ndarray, list[FileIssue]]:
    """One file -> (uint8 (C, H, W) as a viewer shows it, the warnings raised while reading it).

    Warnings PIL raises (corrupt EXIF, odd palettes, ...) are caught here, with the caller's
    warning filters restored afterwards, and returned, each naming ``path``; Pillow's
    decompression-bomb warning is dropped, as ``decode.max_pixels`` has already been checked.
    Raises UnreadableImage. For one file at a time: the capture is process-wide, so threads
    decode through ``decode_into``.

    Example::

        x, warned = read_image(Path("cat.png"), 3, (32, 32), DecodeSettings())
        x.shape
        # -> (3, 32, 32)
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arr = decode_file(path, channels, size, decode)
    issues, about_code = file_warnings(path, caught)
    _pass_on(about_code)
    return arr, issues


def file_warnings(path: Path, caught: list[warnings.WarningMessage]
                  ) -> tuple[list[FileIssue], list[warnings.WarningMessage]]:
    """(the warnings about the file ``path``, one FileIssue per distinct message; those about
    neuroclass's use of PIL, to pass on as they were). Pillow's decompression-bomb warning is
    dropped: ``data.max_pixels`` was checked before."""
    about_code = [w for w in caught if issubclass(w.category, CODE_WARNINGS)]
    messages = dict.fromkeys(" ".join(str(w.message).split()) for w in caught if w not in about_code
                             and not issubclass(w.category, Image.DecompressionBombWarning))
    return [FileIssue(str(path), text) for text in messages], about_code


def _pass_on(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:  # about the code, not a file: raised again, as they were, under the caller's filters
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def load_image(path: str | Path, channels: int, size: tuple[int, int] | None,
               decode: DecodeSettings = DecodeSettings()) -> np.ndarray:
    """One file -> uint8 (C, H, W); one clear error line for a missing, empty, cut-off, oversized or
    non-image file; PIL's warnings re-raised as one UserWarning each, naming the file.

    Example::

        load_image("digit.png", channels=1, size=(28, 28)).shape
        # -> (1, 28, 28)
    """
    path = Path(path)
    if not path.is_file():
        raise missing_file(path)
    try:
        arr, warned = read_image(path, channels, size, decode)
    except UnreadableImage as exc:
        if exc.not_image:
            said = "" if exc.reason.startswith("not a") else "; the file is not a readable image"
            raise NeuroclassError(f"{exc}{said}; pass a PNG, JPEG, BMP, GIF, WebP or TIFF file") from None
        raise NeuroclassError(str(exc)) from None
    for issue in warned:
        warnings.warn(f"{issue.path}: {issue.reason}", stacklevel=2)
    return arr


def read_header(path: Path, max_pixels: int) -> tuple[str, tuple[int, int]]:
    """(PIL mode, (H, W) as displayed, EXIF orientation applied) from the file header alone: PIL
    reads no pixels until ``load()``. UnreadableImage when not an image or over ``max_pixels``.

    Example::

        read_header(Path("digit.png"), 89_478_485)
        # -> ('L', (28, 28))
    """
    with warnings.catch_warnings(record=True):  # the same warnings come again when decoding
        warnings.simplefilter("always")
        try:
            with Image.open(path) as img:
                _check_pixels(path, img.size, max_pixels)
                return img.mode, displayed_size(img)
        except UnreadableImage:
            raise
        except PIL_ERRORS as exc:
            raise _open_failure(path, exc) from exc


@dataclass
class Decoded:
    """Files decoded into one array: ``x`` uint8 (rows, C, H, W) of which rows ``len(kept):`` are
    unused, ``kept`` the index of each used row's file in the listed paths, ``preprocessing`` the
    record (channels, size, decode, skipped), ``skipped`` the unreadable files and ``warned`` the
    warnings raised while reading kept files, in path order."""

    x: np.ndarray
    kept: list[int]
    preprocessing: dict
    skipped: list[FileIssue]
    warned: list[FileIssue]


def decode_into(paths: list[Path], channels: int | None, size: tuple[int, int] | None,
                max_bad_fraction: float, where: str, allocate: Callable[[tuple[int, ...]], np.ndarray],
                decode: DecodeSettings = DecodeSettings(), workers: int | None = None) -> Decoded:
    """Decode files (``decode_file``) into the uint8 array ``allocate((N, C, H, W))``, skipping
    unreadable ones; NeuroclassError when more than ``max_bad_fraction`` are unreadable.

    Two passes, so that no full-size image is held longer than its own decode: headers first (to
    count the files, refuse those over ``decode.max_pixels`` and, when not given, choose the
    channel count and the most common displayed size, which the aspect rule then applies to like
    any other), then each image is decoded, converted and resized, and its row written. The second
    pass runs on ``workers`` threads (``parallel.decode_workers``: None, the usable cores up to 8;
    1, one file at a time in the calling thread): rows, skipped files and warnings come out the
    same, in path order, whatever the count; memory holds a few target-size images per worker,
    never the folder's full-size ones. The output may be a memory-mapped file larger than memory;
    only the calling thread writes it. A file whose header reads but whose pixels do not is found
    only in the second pass, so the output can have unused rows at its end. Such a file still
    counts in the size vote.

    Example::

        d = decode_into(paths, None, (28, 28), 0.01, "pics", lambda shape: np.zeros(shape, np.uint8))
    """
    if not paths:
        raise NeuroclassError(f"{where}: no readable images found")
    workers = decode_workers(workers, len(paths))
    headers, bad = {}, {}
    for i, path in enumerate(paths):
        try:
            headers[i] = read_header(path, decode.max_pixels)
        except UnreadableImage as exc:
            bad[i] = exc.issue()
    if not headers:
        _check_bad(list(bad.values()), len(paths), max_bad_fraction, where)
    if channels is None:
        channels = 1 if all(mode in GRAY_MODES for mode, _ in headers.values()) else 3
    if size is None:
        sizes = [hw for _, hw in headers.values()]
        size = max(set(sizes), key=sizes.count)  # the most common size; others are resized to it
    out = allocate((len(headers), channels, *size))
    kept, warned = _decode_rows([(i, paths[i]) for i in headers], channels, size, decode, out, bad,
                                min(workers, len(headers)))
    skipped = [bad[i] for i in sorted(bad)]  # path order, so that "first" is the first file listed
    _check_bad(skipped, len(paths), max_bad_fraction, where)
    prep = {"channels": channels, "size": list(size), "decode": decode.record(), "skipped": len(bad)}
    return Decoded(out, kept, prep, skipped, warned)


def _decode_rows(files: list[tuple[int, Path]], channels: int, size: tuple[int, int],
                 decode: DecodeSettings, out: np.ndarray, bad: dict[int, FileIssue],
                 workers: int) -> tuple[list[int], list[FileIssue]]:
    """Decode ``files`` (index, path) on ``workers`` threads into consecutive rows of ``out``, in
    order: (the index of each row's file, the warnings about them, in that order). Unreadable files
    go to ``bad`` by index. Warnings about the code (not a file), and those other threads raised
    meanwhile, are passed on once the capture has ended."""
    kept, warned, about_code = [], [], []
    with FileWarnings() as capture:
        def one(item: tuple[int, Path]) -> tuple[np.ndarray | FileIssue, list]:
            try:
                return capture.run(decode_file, item[1], channels, size, decode)
            except UnreadableImage as exc:  # the reason alone: its traceback holds the decoded image
                return exc.issue(), []  # as read_image: an unreadable file's warnings are dropped

        with closing(ordered_map(one, files, workers)) as results:
            for (i, path), (arr, caught) in zip(files, results):
                if isinstance(arr, FileIssue):
                    bad[i] = arr
                    continue
                out[len(kept)] = arr
                kept.append(i)
                issues, code = file_warnings(path, caught)
                warned += issues
                about_code += code
    _pass_on(about_code + capture.elsewhere)
    return kept, warned


def decode_many(paths: list[Path], channels: int | None, size: tuple[int, int] | None,
                max_bad_fraction: float, where: str, decode: DecodeSettings = DecodeSettings(),
                workers: int | None = None) -> Decoded:
    """``decode_into`` an array in memory, trimmed to the kept rows (``workers``: see there).

    The caller warns about the skipped files once its own checks have passed, so that a failing
    load prints its error alone.

    Example::

        d = decode_many(paths, 1, (28, 28), 0.01, "pics")
        d.x.shape
        # -> (len(d.kept), 1, 28, 28)
    """
    done = decode_into(paths, channels, size, max_bad_fraction, where, _in_memory, decode, workers)
    done.x = done.x[:len(done.kept)]
    return done


def _in_memory(shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, dtype=np.uint8)


def _check_bad(bad: list[FileIssue], total: int, max_bad_fraction: float, where: str) -> None:
    """Abort when every file, or more than ``max_bad_fraction`` of them, is unreadable."""
    if not bad:
        return
    fraction = len(bad) / total
    named = name_files(bad)
    if len(bad) == total:
        what = "the only image file is" if total == 1 else f"none of the {total:,} image files is"
        raise NeuroclassError(f"{where}: {what} readable: {named}; check that the files are PNG, "
                              "JPEG, BMP, GIF, WebP or TIFF")
    if fraction > max_bad_fraction:
        one = len(bad) == 1
        raise NeuroclassError(
            f"{where}: {len(bad):,} of {counted(total, 'image')} {'is' if one else 'are'} unreadable "
            f"({fraction:.1%}, more than the {max_bad_fraction:.1%} allowed by data.max_bad_fraction): "
            f"{named}; remove or replace {'it' if one else 'them'}, or allow more with --set "
            f"data.max_bad_fraction={_ceil_fraction(fraction):g}")


def name_files(items: list[FileIssue], named: int = 3) -> str:
    """The files with their reasons on one line: all of them up to ``named``, else the first
    ``named`` and how many more.

    >>> name_files([FileIssue("a.png", "empty")])
    'a.png: empty'
    >>> name_files([FileIssue(f"{c}.png", "empty") for c in "abcde"], named=2)
    'first 2 of 5: a.png: empty; b.png: empty; and 3 more'
    """
    text = "; ".join(f"{item.path}: {item.reason}" for item in items[:named])
    if len(items) <= named:
        return text
    return f"first {named} of {len(items)}: {text}; and {len(items) - named} more"


def _ceil_fraction(fraction: float) -> float:
    """The smallest of 0.01, 0.02, ... 0.99 that allows ``fraction``: a value to suggest to the user."""
    return min(0.99, math.ceil(fraction * 100) / 100)
