"""Decoding files on a pool of threads: an ordered map that holds few results at a time, and a
capture of warnings that names the file the warning thread was reading.

Pillow releases the GIL while it decodes, converts and resizes, so threads decode images in
parallel within one process (no pickling, no start-up, the output array shared). Python's warning
machinery is process-wide: ``warnings.catch_warnings`` swaps module globals, so entering it in
several threads at once corrupts the filters of all of them. ``FileWarnings`` is therefore entered
once, in the calling thread, around the whole parallel decode, and attributes each warning to the
file of the thread that raised it (``threading.local``).
"""
from __future__ import annotations

import os
import threading
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

from neuroclass.errors import NeuroclassError

MAX_WORKERS = 8  # default cap: past this, the parts that hold the GIL (opening files, EXIF, copies) dominate
AHEAD = 2  # results waiting or decoding per worker: a few target-size arrays, never the whole folder

T = TypeVar("T")
R = TypeVar("R")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the system has one, as under
    taskset or a container's cpuset), else ``os.cpu_count()``; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def decode_workers(workers: int | None, files: int) -> int:
    """Threads to decode ``files`` files with: ``workers`` when given (1 decodes in the calling
    thread), else the usable cores, at most ``MAX_WORKERS``; never more than the files.
    NeuroclassError for ``workers`` below 1."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise NeuroclassError(f"decode workers must be a whole number >= 1 (1 decodes one file at a time), "
                              f"or None for the usable cores. Got {workers!r} instead.")
    chosen = workers if workers is not None else min(usable_cores(), MAX_WORKERS)
    return max(1, min(chosen, files))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn(item)`` for each item, yielded in the order of ``items``, computed on ``workers``
    threads (1: in the calling thread, one at a time). At most ``workers * AHEAD`` calls are
    submitted and not yet yielded, so memory holds that many results, whatever the number of items.
    An exception from ``fn`` is raised here, in the item's turn; leaving early (an exception or
    Ctrl-C in the consumer) cancels the calls not started and waits for the running ones."""
    if workers <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="neuroclass-decode")
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= workers * AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


class FileWarnings:
    """Every warning raised in any thread while entered (in one thread, once), recorded against
    the call of ``run`` that raised it, with the caller's filters and ``warnings.showwarning``
    restored on exit. A warning raised outside ``run`` (another thread of the program) is kept in
    ``elsewhere``, for the caller to pass on once the capture has ended.

    While entered, every warning is recorded ("always"), in every thread of the process: the
    capture replaces process-wide state, as ``warnings.catch_warnings`` does.

    Example::

        with FileWarnings() as capture:
            arr, caught = capture.run(decode_file, path)  # in any thread
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._catch = warnings.catch_warnings()
        self.elsewhere: list[warnings.WarningMessage] = []

    def __enter__(self) -> "FileWarnings":
        self._catch.__enter__()
        warnings.simplefilter("always")
        warnings.showwarning = self._show  # catch_warnings puts the caller's back on exit
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._catch.__exit__(*exc_info)

    def run(self, fn: Callable[..., R], *args: object) -> tuple[R, list[warnings.WarningMessage]]:
        """(``fn(*args)``, the warnings it raised in this thread, in order). An exception from
        ``fn`` propagates, its warnings dropped."""
        self._local.log = log = []
        try:
            return fn(*args), log
        finally:
            self._local.log = None

    def _show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
              file: object = None, line: str | None = None) -> None:
        caught = warnings.WarningMessage(message, category, filename, lineno, file, line)
        log = getattr(self._local, "log", None)
        if log is not None:
            log.append(caught)  # this thread's own list
            return
        with self._lock:
            self.elsewhere.append(caught)
