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


# first letters that sound a vowel when a word is spelt out letter by letter: an MLP, an SVM, an RBF
SPELT_VOWEL = frozenset("aefhilmnorsx")
# "u" words that start with the sound of "you": a uniform guess, a user, a usual case
YOU_SOUND = ("uni", "usa", "use", "usu", "uti", "ura", "ure", "eu")


def with_article(noun: str) -> str:
    """``noun`` after "a" or "an", by the sound it starts with, for messages: a word of letters
    without a vowel is read as letters ("an mlp", "a cnn"), a leading x as "ex" ("an xgboost").

    >>> [with_article(w) for w in ("xgboost", "mlp", "svm", "cnn", "knn", "hist_gb", "lightgbm", "ensemble")]
    ['an xgboost', 'an mlp', 'an svm', 'a cnn', 'a knn', 'a hist_gb', 'a lightgbm', 'an ensemble']
    >>> with_article("uniform guess"), with_article("unknown class"), with_article("tv:resnet18")
    ('a uniform guess', 'an unknown class', 'a tv:resnet18')
    """
    word = noun.lower()
    letters = word[:len(word) - len(word.lstrip("abcdefghijklmnopqrstuvwxyz"))]
    if not letters:
        return f"a {noun}"
    if not set(letters) & set("aeiouy") or letters[0] == "x":  # read letter by letter
        vowel = letters[0] in SPELT_VOWEL
    else:
        vowel = letters[0] in "aeiou" and not word.startswith(YOU_SOUND)
    return f"{'an' if vowel else 'a'} {noun}"


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
