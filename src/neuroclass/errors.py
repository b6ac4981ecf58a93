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
