"""The exceptions a user sees: NeuroclassError, a single line naming what is wrong and how to fix
it; and the stops of a training run on request (RunInterrupted, StoppedBeforeCheckpoint)."""
from __future__ import annotations

from pathlib import Path


class NeuroclassError(ValueError):
    """An error in the user's input (file, option, data). The CLI prints it as one line, exit 2.

    A ``ValueError``, so that scikit-learn's tools and a caller's ``except ValueError`` catch it.

    >>> raise NeuroclassError("data: 'missing/' does not exist; pass a folder, file or built-in name")
    Traceback (most recent call last):
    neuroclass.errors.NeuroclassError: data: 'missing/' does not exist; pass a folder, file or built-in name
    >>> issubclass(NeuroclassError, ValueError)
    True
    """


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it takes, for messages: "1 epoch", "3 epochs", "0 classes".

    >>> counted(1, "epoch"), counted(2, "epoch"), counted(0, "class", "classes")
    ('1 epoch', '2 epochs', '0 classes')
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


class RunInterrupted(Exception):
    """Training was stopped on request (or at once, by a second Ctrl-C); ``path`` is the run's
    partial folder, which holds the checkpoint that ``resume(path)`` continues from. ``finished``:
    the stop came once the run was complete (while its report was written); ``path`` is then the
    finished run folder and there is nothing to resume."""

    def __init__(self, path: Path, detail: str, finished: bool = False) -> None:
        where = f"the finished run is in {path}" if finished else f"the run can be resumed from {path}"
        super().__init__(f"{detail}; {where}")
        self.path, self.detail, self.finished = path, detail, finished


class StoppedBeforeCheckpoint(KeyboardInterrupt):
    """Stopped at once (a second Ctrl-C) before a first checkpoint: nothing was saved, and the
    run's partial folder (with the --out folder, when the run made it and it is empty) is removed."""
