"""The lock a process holds on a partial run folder while it trains it, so that two never train the
same one: an advisory lock (flock) on the folder's lock file, released when the file is closed or
the process ends, however it ends. Where the system has no advisory locks (Windows) nothing is
locked.

Example::

    handle = lock_folder(Path("runs/.partial-x"), ".lock")  # NeuroclassError when held elsewhere
    is_locked(Path("runs/.partial-x"), ".lock")  # True: the probe opens the file anew
    handle.close()
"""
from __future__ import annotations

from pathlib import Path
from typing import IO, Optional

from neuroclass.errors import NeuroclassError
from neuroclass.io import hold_lock, lock_is_held


def lock_folder(folder: Path, name: str,
                busy: str = "another process is training this run; wait for it to end or stop it first") -> Optional[IO]:
    """Lock ``folder`` for this process through its file ``name`` (created if missing); the open
    file, to close to unlock (None where nothing can be locked). Raises NeuroclassError when
    another process holds the lock ("'<folder>': <busy>"), or when the lock file cannot be opened
    (a read-only folder)."""
    try:
        return hold_lock(folder / name)
    except BlockingIOError:
        raise NeuroclassError(f"'{folder}': {busy}") from None
    except OSError as exc:
        raise NeuroclassError(f"'{folder}': cannot open its lock file ({exc.strerror or exc}); "
                              "make the folder writable") from None


def is_locked(folder: Path, name: str) -> bool:
    """Whether a process holds ``folder``'s lock: a probe that creates no file (a folder without
    its lock file is held by nobody) and leaves no lock behind. False when the lock file cannot
    be probed (unreadable): lock_folder then names the problem when it tries to lock it."""
    try:
        return lock_is_held(folder / name)
    except OSError:
        return False
