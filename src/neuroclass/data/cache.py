"""A memory-mapped cache of decoded image folders: decode and resize once, read many times.

One folder per key under ``$NEUROCLASS_CACHE`` (else ``~/.cache/neuroclass/images``), holding

    images.npy   uint8 (N, C, H, W), written through a memory map so that it may exceed memory
    rows.npz     one entry per row of images.npy: ``kept`` (index of its file in the listed paths),
                 ``labels`` (int64) and ``splits`` (split folder name, "" without split folders)
    meta.json    format version, key, source root, classes, preprocessing record, skipped files and
                 the warnings raised while decoding (a hit decodes nothing, so it repeats them)

The key is a SHA-256 over the sorted relative paths with each file's size and mtime_ns, the
preprocessing (channels, size, max_bad_fraction, the decode record of data/pixels.py with its
version and aspect rule) and ``FORMAT``, so a cache decoded another way (an older decoder, another
background, aspect rule or pixel limit) is never reused. It reads no file contents, so an edit that
keeps both a file's size and its mtime (say, restored with ``touch -r``) goes unnoticed; delete the
cache folder, or set ``data.cache=false``, after such an edit.

A cache is built in a temp folder beside its final name and renamed into place, so the final name
never holds a partial cache; a folder that is there but unreadable (a missing file, a wrong shape)
is ignored and rebuilt. The builder holds a lock (neuroclass.io.hold_lock) on ``.building`` in its
temp folder from before the folder gets its ``.tmp-`` name, so a temp folder whose lock nobody
holds was left by a build that was killed (SIGKILL, a power cut): every load takes that lock and,
holding it, removes the folder at once. A temp folder without the lock file (an older
neuroclass's, or one on a system without advisory locks) or whose lock cannot be probed is removed
once a day old. Only neuroclass's own temp names (``.tmp-``/``.new-``/``.stale-`` followed by the
first 12 hex digits of a key) are ever removed, so ``$NEUROCLASS_CACHE`` may be a shared folder.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib.format import open_memmap

from neuroclass.data.images import decode_into
from neuroclass.data.issues import FileIssue
from neuroclass.data.pixels import DecodeSettings
from neuroclass.errors import NeuroclassError
from neuroclass.io import CAN_LOCK, hold_lock, lock_if_free, write_bytes_atomic, write_text_atomic

FORMAT = 2  # bump when the layout or the decoding changes, so that older caches are not read
IN_MEMORY_BELOW = 2 * 1024**3  # bytes: a smaller cache is copied into memory, a larger one stays mapped
STALE_AFTER_S = 24 * 3600  # a temp folder without a lock untouched this long was left by a killed run
BUILD_LOCK = ".building"  # the lock file in a temp folder, held by the process that builds in it
CHUNK_ROWS = 1024  # rows copied at a time when a cache must be rewritten shorter
KEY_PREFIX = 12  # hex digits of the key in a temp folder's name
# the temp folders _locked_temp (tempfile.mkdtemp's random part) and _publish name; nothing else
# in the cache folder is ever swept
TEMP_NAME = re.compile(r"\.(?:(?:tmp|new)-[0-9a-f]{12}-[A-Za-z0-9_]+|stale-[0-9a-f]{12}-[0-9a-f]{8})")


@dataclass
class CachedImages:
    """Decoded images and what each row is, read from the cache.

    ``x`` is in memory when smaller than ``IN_MEMORY_BELOW``, else a copy-on-write memory map of
    ``images.npy``: writable, so ``torch.from_numpy`` accepts it without a warning, while writes land
    in private memory, never in the cache file.
    """

    x: np.ndarray  # uint8 (N, C, H, W)
    kept: np.ndarray  # int64 (N,), index of each row's file in the listed paths
    labels: np.ndarray  # int64 (N,)
    splits: np.ndarray  # str (N,)
    preprocessing: dict  # channels, size, decode, skipped, cache ("hit" | "built"), cache_path
    skipped: list[FileIssue]  # the unreadable files, in path order
    warned: list[FileIssue]  # warnings raised while decoding the kept files, in path order
    path: Path


def cache_dir() -> Path:
    """Where caches live: ``$NEUROCLASS_CACHE``, else ``~/.cache/neuroclass/images``.

    Example::

        cache_dir()
        # -> PosixPath('/home/me/.cache/neuroclass/images')
    """
    env = os.environ.get("NEUROCLASS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neuroclass" / "images"


def cache_key(root: Path, paths: list[Path], channels: int | None, size: tuple[int, int] | None,
              max_bad_fraction: float, decode: DecodeSettings = DecodeSettings()) -> str:
    """SHA-256 of the files' relative paths, sizes and mtimes plus the preprocessing (stat only).

    Example::

        cache_key(Path("pics"), [Path("pics/cat/1.png")], None, (32, 32), 0.01)
        # -> '3f1c...'
    """
    h = hashlib.sha256()
    settings = {"format": FORMAT, "channels": channels, "size": list(size) if size else None,
                "max_bad_fraction": max_bad_fraction, "decode": decode.record()}
    h.update(json.dumps(settings, sort_keys=True).encode())
    for rel, path in sorted((p.relative_to(root).as_posix(), p) for p in paths):
        try:
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:  # a dangling link: decoding will report it as unreadable
            stamp = (-1, -1)
        h.update(f"{rel}\0{stamp[0]}\0{stamp[1]}\0".encode())  # \0 never occurs in a file name
    return h.hexdigest()


def load_or_build(root: Path, paths: list[Path], labels: np.ndarray, splits: np.ndarray,
                  classes: list[str], channels: int | None, size: tuple[int, int] | None,
                  max_bad_fraction: float, decode: DecodeSettings = DecodeSettings(),
                  workers: int | None = None) -> CachedImages:
    """The cached decoding of ``paths``; decode (see ``images.decode_into``, on ``workers``
    threads, which leave the pixels and the key unchanged) and store it when absent.

    ``labels`` and ``splits`` hold one entry per path; the result holds those of the kept rows.
    Unreadable files raise or are skipped exactly as in ``images.decode_many``.

    Example::

        c = load_or_build(root, paths, labels, splits, ["cat", "dog"], None, (32, 32), 0.01)
        c.preprocessing["cache"], c.x.shape
        # -> ('built', (200, 3, 32, 32))
    """
    folder = cache_dir() / cache_key(root, paths, channels, size, max_bad_fraction, decode)
    _sweep_stale(folder.parent)
    found = _read(folder, "hit")
    if found is not None:
        return found
    _build(folder, root, paths, labels, splits, classes, channels, size, max_bad_fraction, decode,
           workers=workers)
    built = _read(folder, "built")
    if built is None:
        raise NeuroclassError(f"{folder}: the image cache just written cannot be read back; delete "
                              "this folder, or load without the cache with --set data.cache=false")
    return built


def _read(folder: Path, how: str) -> CachedImages | None:
    """The cache in ``folder`` marked ``how`` ("hit" | "built"), or None when it is not usable."""
    opened = _open(folder)
    if opened is None:
        return None
    meta, x, rows = opened
    if x.nbytes < IN_MEMORY_BELOW:
        x = np.array(x)  # slicing resident memory beats page faults; drops the map
    prep = dict(meta["preprocessing"], cache=how, cache_path=str(folder))
    return CachedImages(x, rows["kept"].astype(np.int64), rows["labels"].astype(np.int64),
                        rows["splits"], prep, [FileIssue(**item) for item in meta["skipped_files"]],
                        [FileIssue(**item) for item in meta["warned"]], folder)


def _open(folder: Path) -> tuple[dict, np.ndarray, dict[str, np.ndarray]] | None:
    """(meta, mapped images, rows) of ``folder``, or None when missing, partial, damaged or of
    another format."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("key") != folder.name:
            return None
        # copy-on-write: see CachedImages; the file itself is opened read-only
        x = np.load(folder / "images.npy", mmap_mode="c", allow_pickle=False)
        with np.load(folder / "rows.npz", allow_pickle=False) as npz:
            rows = {name: npz[name] for name in ("kept", "labels", "splits")}
        lengths = {len(r) for r in rows.values()} | {x.shape[0]}
        if list(x.shape) != meta["shape"] or x.dtype != np.uint8 or x.ndim != 4 or len(lengths) != 1:
            return None
        if not isinstance(meta.get("preprocessing"), dict) or "decode" not in meta["preprocessing"]:
            return None
        if not all(isinstance(item, dict) and set(item) == {"path", "reason"}
                   for item in meta["skipped_files"] + meta["warned"]):
            return None
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile):
        return None  # ValueError covers bad JSON and an images.npy shorter than its header says
    return meta, x, rows


def _build(folder: Path, root: Path, paths: list[Path], labels: np.ndarray, splits: np.ndarray,
           classes: list[str], channels: int | None, size: tuple[int, int] | None,
           max_bad_fraction: float, decode: DecodeSettings, can_lock: bool = CAN_LOCK,
           workers: int | None = None) -> None:
    """Decode into a temp folder beside ``folder``, then rename it into place. ``can_lock`` False
    builds without the lock, as where the system has no advisory locks. The decoding threads
    (``workers``) never touch the memory map: ``decode_into`` writes every row from this thread."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp, lock = None, None

    def allocate(shape: tuple[int, ...]) -> np.ndarray:
        return open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=shape)

    try:
        tmp, lock = _locked_temp(folder, can_lock)
        images = tmp / "images.npy"
        done = decode_into(paths, channels, size, max_bad_fraction, str(root), allocate, decode, workers)
        x, kept, prep = done.x, done.kept, done.preprocessing
        x.flush()  # msync: the pixels are on disk before the rename makes them visible
        rows, shape = x.shape[0], list(x.shape)
        del x
        done.x = None  # unmap before the file may be replaced below
        if rows != len(kept):
            shape[0] = len(kept)
            _shorten(images, len(kept))
        kept = np.asarray(kept, dtype=np.int64)
        buf = io.BytesIO()
        np.savez(buf, kept=kept, labels=np.asarray(labels, dtype=np.int64)[kept],
                 splits=np.asarray(splits)[kept])
        write_bytes_atomic(tmp / "rows.npz", buf.getvalue())
        meta = {"format": FORMAT, "key": folder.name, "source": str(root.resolve()),
                "classes": list(classes), "shape": shape, "preprocessing": prep,
                "skipped": prep["skipped"], "files": len(paths),
                "skipped_files": [asdict(item) for item in done.skipped],
                "warned": [asdict(item) for item in done.warned]}
        write_text_atomic(tmp / "meta.json", json.dumps(meta, indent=1))
        # still held until closed; a sweep that opened it before keeps the folder, one that finds
        # it missing leaves the folder to the age rule. Missing where nothing was locked.
        (tmp / BUILD_LOCK).unlink(missing_ok=True)
        _publish(tmp, folder)
    except BaseException:
        if tmp is not None:  # _locked_temp cleans up after itself
            shutil.rmtree(tmp, ignore_errors=True)  # an error or Ctrl-C leaves nothing behind
        raise
    finally:
        if lock is not None:
            lock.close()


def _locked_temp(folder: Path, can_lock: bool = CAN_LOCK) -> tuple[Path, IO | None]:
    """A new temp folder beside ``folder`` and the lock its builder holds on its BUILD_LOCK (None,
    and no lock file, where ``can_lock`` is False): taken under a ``.new-`` name, then renamed to
    ``.tmp-``, so that every ``.tmp-`` folder with the lock file has had its lock held. On any
    error or interrupt it removes what it made and closes the lock."""
    new = Path(tempfile.mkdtemp(prefix=f".new-{folder.name[:KEY_PREFIX]}-", dir=folder.parent))
    tmp, lock = new.with_name(".tmp-" + new.name[len(".new-"):]), None
    try:
        lock = hold_lock(new / BUILD_LOCK, can_lock)
        os.replace(new, tmp)
    except BaseException:
        for path in (new, tmp):
            shutil.rmtree(path, ignore_errors=True)
        if lock is not None:
            lock.close()
        raise
    return tmp, lock


def _shorten(images: Path, rows: int) -> None:
    """Rewrite ``images`` with its first ``rows`` rows: rare, when pixels failed after a header read."""
    old = np.load(images, mmap_mode="r")
    part = images.with_name("images.part.npy")
    new = open_memmap(part, mode="w+", dtype=np.uint8, shape=(rows, *old.shape[1:]))
    for start in range(0, rows, CHUNK_ROWS):  # chunks: the array may be larger than memory
        stop = min(start + CHUNK_ROWS, rows)  # ``old`` has more rows than ``new``
        new[start:stop] = old[start:stop]
    new.flush()
    del new, old
    os.replace(part, images)


def _publish(tmp: Path, folder: Path) -> None:
    """Rename ``tmp`` to ``folder``, first moving aside a damaged cache already under that name;
    a good one there (another process built the same key meanwhile) wins and ``tmp`` is dropped."""
    if folder.exists() and _open(folder) is None:  # damaged: set aside, then delete, so that the
        # final name never holds a half-deleted folder
        stale = folder.with_name(f".stale-{folder.name[:KEY_PREFIX]}-{uuid.uuid4().hex[:8]}")
        os.replace(folder, stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.replace(tmp, folder)
    except OSError:
        if not folder.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another process published this key first: use theirs


def _sweep_stale(parent: Path, can_lock: bool = CAN_LOCK, now: float | None = None) -> None:
    """Delete the temp folders of killed builds (e.g. ``kill -9``; they may be huge): at once where
    this process can take the lock of its lock file (and deletes it while holding that lock), else
    once they are a day old (``now``: seconds since the epoch, default the time now). A folder
    whose lock a live build holds is kept. ``can_lock`` False sweeps as where the system has no
    advisory locks: by age only. Only names matching TEMP_NAME are touched."""
    now = time.time() if now is None else now
    try:
        listed = sorted(parent.iterdir())
    except OSError:  # no cache folder yet, or unreadable: building will say so
        return
    for path in listed:
        if not TEMP_NAME.fullmatch(path.name) or not path.is_dir():
            continue
        # a .tmp- folder's lock was taken before it got that name; a .new- folder's lock file may
        # not be locked yet (and a probe then could make its builder's lock fail): never probed
        if can_lock and path.name.startswith(".tmp-"):
            try:
                with lock_if_free(path / BUILD_LOCK):
                    shutil.rmtree(path, ignore_errors=True)  # abandoned: its builder is gone
                continue
            except BlockingIOError:
                continue  # a live build holds it
            except OSError:
                pass  # missing (a finished build renames it now) or unknown: the age rule decides
        if _untouched_for(path, now) > STALE_AFTER_S:
            shutil.rmtree(path, ignore_errors=True)


def _untouched_for(path: Path, now: float) -> float:
    """Seconds since ``path`` or a file directly in it last changed; 0 when it cannot be read (being
    removed or renamed by another process)."""
    try:
        return now - max([path.stat().st_mtime, *(p.lstat().st_mtime for p in path.iterdir())])
    except OSError:
        return 0.0
