"""The lock a process holds on a partial run folder while it trains it, so that two never train the
same one: an advisory lock (flock) on the folder's lock file, released when the file is closed or
the process ends, however it ends. Where the system has no advisory locks (Windows) nothing is
locked.

Example::

    handle = lock_folder(Path("runs/.partial-x"), ".lock")  # NeuroclassError when held elsewhere
    is_locked(Path("runs/.partial-x"), ".lock")  # False in this process: the lock is its own
    handle.close()
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Optional

from neuroclass.errors import NeuroclassError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a partial folder is then not guarded
    fcntl = None


def lock_folder(folder: Path, name: str) -> Optional[IO]:
    """Lock ``folder`` for this process through its file ``name`` (created if missing); the open
    file, to close to unlock (None where nothing can be locked). Raises NeuroclassError when
    another process holds the lock, or when the lock file cannot be opened (a read-only folder)."""
    if fcntl is None:
        return None
    try:
        handle = open(folder / name, "a+")
    except OSError as exc:
        raise NeuroclassError(f"'{folder}': cannot open its lock file ({exc.strerror or exc}); "
                              "make the folder writable") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise NeuroclassError(f"'{folder}': another process is training this run; wait for it "
                              "to end or stop it first") from None
    return handle


def is_locked(folder: Path, name: str) -> bool:
    """Whether another process holds ``folder``'s lock: a probe that creates no file (a folder
    without its lock file is held by nobody) and leaves no lock behind."""
    if fcntl is None:
        return False
    try:
        fd = os.open(folder / name, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return False
