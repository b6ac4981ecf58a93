"""Atomic files: written under a temporary name in the same folder, flushed to disk, then renamed.

A reader never sees half a file, and a crash leaves either the old file or the new one (the folder
is fsynced after the rename, so the rename itself survives a power cut). ``write_folder_atomic`` does
the same for a folder of files that belong together (a training checkpoint). The new
file gets the permissions of any file created by this process (0666 less the umask), not the 0600
of a temporary file, so that a run folder copied to a shared place or served by another user
stays readable.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Callable, Optional

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None

CAN_LOCK = fcntl is not None  # whether hold_lock locks anything on this system


def current_umask() -> int:
    """The process's file-creation mask: read from /proc/self/status where Linux has it, else by
    setting and restoring it (a moment in which another thread's new file would get 022).

    >>> 0 <= current_umask() <= 0o777
    True
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, fsync, chmod to 0666 & ~umask, rename).

    Raises OSError when the folder cannot be written; the target is then left as it was.

    Example::

        write_bytes_atomic(Path(tmp) / "a.bin", b"x")
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def fsync_folder(folder: str | os.PathLike) -> None:
    """Flush ``folder``'s entries (names created, renamed or removed in it) to disk. A no-op where
    the system cannot open a folder (Windows). Raises OSError when the flush fails."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (IsADirectoryError, PermissionError):  # Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes, mode: int) -> None:
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, mode)


def write_folder_atomic(path: str | os.PathLike, files: dict[str, bytes],
                        before_rename: Optional[Callable[[Path], None]] = None) -> Path:
    """Create the folder ``path`` holding ``files`` (file name -> bytes) atomically: every file is
    written and fsynced in a hidden temporary folder beside ``path``, which is fsynced and renamed
    to ``path``; then the parent folder is fsynced. ``path`` must not exist. ``before_rename(tmp)``
    runs once the files are on disk, just before the rename (a test's pause point).

    Raises OSError (ENOSPC, EFBIG, EACCES, ...) when anything cannot be written; the temporary
    folder is then removed where possible and ``path`` does not exist.

    Example::

        write_folder_atomic(Path(tmp) / "ckpt-000001", {"state.json": b"{}"})
    """
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".tmp-{path.name}."))
    try:
        mode = 0o666 & ~current_umask()
        for name, data in files.items():
            _write_synced(tmp / name, data, mode)
        os.chmod(tmp, 0o777 & ~current_umask())
        fsync_folder(tmp)
        if before_rename is not None:
            before_rename(tmp)
        os.rename(tmp, path)
        fsync_folder(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """``write_bytes_atomic`` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def hold_lock(path: str | os.PathLike, can_lock: bool = CAN_LOCK) -> Optional[IO]:
    """Take an advisory lock (flock) on the file ``path`` (created if missing) for this process:
    the open file, to close to unlock. The lock also ends with the process, however it ends.
    Where nothing can be locked (``can_lock`` False; its default CAN_LOCK is False on Windows)
    returns None and creates no file. Raises BlockingIOError when another process holds it,
    OSError when the file cannot be opened.

    Example::

        handle = hold_lock(Path(tmp) / ".lock")
        lock_is_held(Path(tmp) / ".lock")  # -> True in any other process while open
        handle.close()
    """
    if fcntl is None or not can_lock:
        return None
    return _flocked(path, "a+")


def lock_if_free(path: str | os.PathLike) -> IO:
    """Take ``hold_lock``'s lock on the existing file ``path`` without creating it: the open file
    (read-only), to close to unlock. Whoever holds it knows no other process holds the lock, so it
    may remove what the lock guards. Raises FileNotFoundError when ``path`` is missing,
    BlockingIOError when another process holds the lock, other OSError (EACCES, ENOLCK) when the
    file cannot be opened or locked, and OSError(ENOLCK) where nothing can be locked (CAN_LOCK
    False).

    Example::

        with lock_if_free(Path(tmp) / ".lock"):
            shutil.rmtree(tmp)  # nobody else held it
    """
    if fcntl is None:
        raise OSError(errno.ENOLCK, "no advisory locks on this system", str(path))
    return _flocked(path, "rb")


def _flocked(path: str | os.PathLike, mode: str) -> IO:
    """``path`` opened with ``mode`` and exclusively flocked without waiting: the open file, to
    close to unlock; closed again when the lock is not taken (BlockingIOError when held elsewhere)."""
    handle = open(path, mode)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        handle.close()
        raise
    return handle


def lock_is_held(path: str | os.PathLike) -> bool:
    """Whether some process (this one too, through another open file) holds ``hold_lock``'s lock
    on ``path``: a probe that creates no file and leaves no lock behind. A missing file is held by
    nobody (False); False where nothing can be locked (CAN_LOCK False). Raises OSError when the
    answer is unknown: the file cannot be opened (EACCES) or locked (ENOLCK)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # EWOULDBLOCK: another open file holds LOCK_EX
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return False
