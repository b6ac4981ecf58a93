"""Atomic files: written under a temporary name in the same folder, flushed to disk, then renamed.

A reader never sees half a file, and a crash leaves either the old file or the new one. The new
file gets the permissions of any file created by this process (0666 less the umask), not the 0600
of a temporary file, so that a run folder copied to a shared place or served by another user
stays readable.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """``write_bytes_atomic`` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"))
