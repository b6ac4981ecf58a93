"""Field rules: the values a config field accepts, and the reader that turns a mapping into a
checked config dataclass.

A field carries its rule as metadata, ``field(default=..., metadata=rule(gt=0))``: bounds, choices,
a pattern, the length of a list, a parser. ``build_dataclass`` converts each given value to the
field's type, checks it against the field's rule, builds the dataclass and then calls its
``validate()`` method, where a dataclass keeps the rules that tie its fields together. Every failure
is one NeuroclassError line that names the parameter, the rule and the value given, in the style of
scikit-learn's parameter validation: "The 'optim.lr' parameter must be > 0. Got -1 instead."
The config sections (config.py) and the model families' options (models/) use it alike.
"""
from __future__ import annotations

import dataclasses
import math
import operator
import re
import types
import typing
from typing import Any, Callable, Sequence

import yaml

from neuroclass.errors import NeuroclassError
from neuroclass.registry import closest, did_you_mean


def rule(gt: float | None = None, ge: float | None = None, lt: float | None = None,
         le: float | None = None, choices: tuple | Callable[[], Sequence] = (),
         pattern: str | None = None, doc: str | None = None, min_items: int | None = None,
         parse: Callable[[Any], Any] | None = None) -> dict:
    """Field metadata: the values a field accepts, checked at load by ``build_dataclass``.

    - ``gt``/``ge``/``lt``/``le``: bounds on a number (on each item of a list field);
    - ``choices``: the allowed values (of each item of a list field): a tuple, or a function that
      returns them, for sets known only at run time (torchvision's architectures);
    - ``pattern``: a regular expression; text that matches it in full passes too (``cuda:\\d+``
      beside the choices auto, cpu, mps, cuda);
    - ``doc``: how error messages describe the allowed values (default: the bounds or choices);
    - ``min_items``: the fewest items of a list field;
    - ``parse``: turns the given value into the field's type first (``parse_duration``).

    >>> rule(gt=0)["rule"]["gt"]
    0
    """
    return {"rule": {"gt": gt, "ge": ge, "lt": lt, "le": le, "choices": choices, "pattern": pattern,
                     "doc": doc, "min_items": min_items, "parse": parse}}


BOUNDS = {"gt": (">", operator.gt), "ge": (">=", operator.ge), "lt": ("<", operator.lt),
          "le": ("<=", operator.le)}


def check_rule(where: str, value: Any, check: dict) -> None:
    """Raise NeuroclassError when ``value`` breaks ``check`` (a ``rule(...)["rule"]``); None passes.

    >>> check_rule("optim.lr", -1.0, rule(gt=0)["rule"])
    Traceback (most recent call last):
    neuroclass.errors.NeuroclassError: The 'optim.lr' parameter must be > 0. Got -1.0 instead.
    """
    if value is None:
        return
    if isinstance(value, list):
        if check["min_items"] is not None and len(value) < check["min_items"]:
            n = check["min_items"]
            raise NeuroclassError(f"The '{where}' parameter must list at least {n} "
                                  f"value{'s' * (n != 1)}. Got {value!r} instead.")
        bad = [item for item in value if _breaks(item, check)]
        if bad:
            raise NeuroclassError(f"The '{where}' parameter must hold values {_allowed(check)}. "
                                  f"Got {value!r} instead." + _hint(bad[0], check))
    elif _breaks(value, check):
        raise NeuroclassError(f"The '{where}' parameter must be {_allowed(check)}. "
                              f"Got {value!r} instead." + _hint(value, check))


def _choices(check: dict) -> tuple:
    choices = check["choices"]
    return tuple(choices() if callable(choices) else choices)


def _breaks(value: Any, check: dict) -> bool:
    if check["choices"] or check["pattern"]:
        return value not in _choices(check) and not (
            check["pattern"] and isinstance(value, str) and re.fullmatch(check["pattern"], value))
    return any(check[key] is not None and not fn(value, check[key]) for key, (_, fn) in BOUNDS.items())


def _allowed(check: dict) -> str:
    """The allowed values in words: '>= 0 and < 1', "one of 'a', 'b'"."""
    if check["doc"]:
        return check["doc"]
    if check["choices"]:
        return "one of " + ", ".join(repr(c) for c in _choices(check))
    if check["pattern"]:
        return f"text matching {check['pattern']!r}"
    return " and ".join(f"{sym} {check[key]:g}" for key, (sym, _) in BOUNDS.items()
                        if check[key] is not None)


def _hint(value: Any, check: dict) -> str:
    if not check["choices"]:
        return ""
    return did_you_mean(str(value), [str(c) for c in _choices(check)])


def _coerce(where: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` (int, float, str, bool, list, list[T], dict, Optional[...])."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(where, value, args[0])
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise NeuroclassError(f"The '{where}' parameter must be a finite number. "
                                      f"Got {value!r} instead.")
            return float(value)
    elif hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif hint is list or origin is list:
        return _coerce_list(where, value, (typing.get_args(hint) or (None,))[0])
    elif hint is dict:
        if isinstance(value, dict):
            return dict(value)
    raise NeuroclassError(f"The '{where}' parameter must be of type {_type_name(hint)}. "
                          f"Got {value!r} instead.")


def _coerce_list(where: str, value: Any, item: type | None) -> list:
    """A list from a list, a tuple or comma-separated text ('512,256'); items as ``item``."""
    if isinstance(value, str):
        # text items of a list[str] stay as written; others are read as YAML scalars ('8' -> 8)
        value = [v if item in (str, None) else _scalar(v) for v in value.split(",") if v]
    if not isinstance(value, (list, tuple)):
        raise NeuroclassError(f"The '{where}' parameter must be of type "
                              f"{_type_name(list[item] if item else list)}. Got {value!r} instead.")
    if item is None:
        return list(value)
    try:
        return [_coerce(where, v, item) for v in value]
    except NeuroclassError:
        raise NeuroclassError(f"The '{where}' parameter must be a list of {_type_name(item)}. "
                              f"Got {value!r} instead.") from None


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # left as text, for the item's type check to name


def _type_name(hint: Any) -> str:
    return str(hint) if typing.get_origin(hint) else getattr(hint, "__name__", str(hint))


def build_dataclass(cls: type, values: dict, prefix: str) -> Any:
    """A config dataclass from a mapping: each key known, of the field's type and within its rule,
    then the fields' combination checked (``validate()``). Nested dataclass fields take mappings.

    ``prefix`` names the section in messages ('optim.', 'model.options.'). Raises NeuroclassError.

    Example::

        build_dataclass(OptimConfig, {"lr": 0.1}, "optim.").lr
        # -> 0.1
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        where = f"{prefix}{key}"
        if key not in fields:
            close = closest(key, list(fields))  # suggested as the whole key ('optim.lr'), as it was given
            raise NeuroclassError(f"unknown config key '{where}'."
                                  + (f" Did you mean '{prefix}{close}'?" if close else "")
                                  + f" Valid keys here: {', '.join(fields)}.")
        if dataclasses.is_dataclass(hints[key]):
            if not isinstance(value, dict):
                raise NeuroclassError(f"config section '{where}' must be a mapping. Got {value!r}.")
            kwargs[key] = build_dataclass(hints[key], value, f"{where}.")
            continue
        check = fields[key].metadata.get("rule")
        if check and check["parse"] and value is not None:
            value = check["parse"](value)
        value = _coerce(where, value, hints[key])
        if check:
            check_rule(where, value, check)
        kwargs[key] = value
    built = cls(**kwargs)
    if hasattr(built, "validate"):
        built.validate()
    return built
