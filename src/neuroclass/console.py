"""The command line's output set-up: the library's log records as plain lines, warnings as one line.

The library never prints: it logs what a run chose at INFO (the "neuroclass" loggers) and warns
about data problems. The CLI shows both with ``log_lines``, and puts the process's logging and
warnings set-up back as it found it.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from typing import Iterator


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the CLI: "neuroclass: warning: MESSAGE" on stderr."""
    print(f"neuroclass: warning: {message}", file=sys.stderr)


class ShowOnce:
    """A ``warnings.showwarning`` that shows each message once (``show_warning``'s line): a command
    that reads its data twice (evaluate and its report, every fold of a cross-validation, every
    entry of a comparison) warns about it once. Python's "once" filter would not do: any change of
    the filters (a library's ``catch_warnings``) forgets what it has shown."""

    def __init__(self) -> None:
        self.shown: set[str] = set()

    def __call__(self, message, category, filename, lineno, file=None, line=None) -> None:
        if str(message) not in self.shown:
            self.shown.add(str(message))
            show_warning(message, category, filename, lineno, file, line)


@contextlib.contextmanager
def log_lines(quiet: bool) -> Iterator[None]:
    """The "neuroclass" loggers' INFO records as plain lines on stdout (none if ``quiet``), and
    warnings as one line on stderr, each message once, inside the ``with`` block; the process's
    logging and warnings set-up as it was afterwards."""
    logger = logging.getLogger("neuroclass")
    before = logger.level, logger.propagate
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    # propagate off: a root handler the caller configured would print each record a second time
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = ShowOnce()
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]
