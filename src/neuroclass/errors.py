"""The one exception type a user sees: a single line naming what is wrong and how to fix it."""


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
