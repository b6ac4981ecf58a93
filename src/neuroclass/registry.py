"""A small name -> object registry with did-you-mean lookups."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from neuroclass.errors import NeuroclassError

T = TypeVar("T")


def closest(name: str, choices: list[str]) -> str | None:
    """The choice closest to ``name`` (difflib's ratio of at least 0.5), or None when nothing is close.

    >>> closest("--modle", ["--model", "--epochs"]), closest("zzz", ["--model"])
    ('--model', None)
    """
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return close[0] if close else None


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return " Did you mean 'x'?" for the closest choice, or "" when nothing is close."""
    close = closest(name, choices)
    return f" Did you mean '{close}'?" if close else ""


class Registry(Generic[T]):
    """Names to objects. ``register`` is a decorator; duplicate names raise.

    >>> models = Registry("model")
    >>> @models.register("mlp")
    ... def build_mlp(): ...
    >>> models.get("mlp") is build_mlp
    True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            raise NeuroclassError(
                f"unknown {self.kind} '{name}'; choose one of: {', '.join(self.names())}."
                + did_you_mean(name, self.names())
            )
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
