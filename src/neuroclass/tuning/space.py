"""The search space of ``neuroclass tune``: config keys and the values a trial may give them.

A space is a mapping from a config key (``optim.lr``, ``train.batch_size``, ``model.options.dropout``,
``augment.crop``, ...) to its values, written in YAML::

    optim.lr: {low: 1.0e-4, high: 1.0e-1, log: true}   # a range (log-uniform)
    optim.weight_decay: {low: 0.0, high: 1.0e-3}        # a range (uniform)
    model.options.dropout: {low: 0.0, high: 0.5, step: 0.1}   # a range on a grid of steps
    train.batch_size: [64, 128, 256]                    # a list: one of these values
    model.name: [cnn, resnet]

A range is an integer range when the config field holds whole numbers (``train.batch_size``), else a
float range. Keys are checked at load against the config (an unknown key fails with the usual
did-you-mean) and both ends of a range, and every listed value, must be valid values of the key.
Each model family ships a default space (``default_space``); ``--space`` replaces it.

Grid search (Optuna's GridSampler) needs every parameter discrete: a list, or a range with a step.
Sources: Bergstra & Bengio 2012 (random search); Bergstra et al. 2011 (TPE); Optuna's samplers.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from neuroclass.config import Config, load_config, to_dict
from neuroclass.errors import NeuroclassError
from neuroclass.classical import CLASSICAL
from neuroclass.models.registry import AUTO
from neuroclass.training.families import check_family_config, is_classical, is_glassbox, options_type, recorded_options
from neuroclass.training.glassbox_settings import SEARCH_GRID as GLASSBOX_GRID
from neuroclass.training.glassbox_settings import SEARCH_SPACE as GLASSBOX_SPACE
from neuroclass.registry import closest

GRID_POINTS_LIMIT = 10_000  # a grid larger than this is a typo, not a plan


@dataclass(frozen=True)
class Param:
    """One searched config key: ``choices`` (a list) or a range ``low``..``high`` (``log``:
    log-uniform; ``step``: a grid of steps; ``integer``: whole numbers)."""

    key: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False

    def grid_values(self) -> list:
        """The values a grid search tries; NeuroclassError for a range without a step."""
        if self.choices is not None:
            return list(self.choices)
        if self.step is None:
            raise NeuroclassError(f"--sampler grid: {self.key} is a continuous range; give it a list of "
                                  f"values (e.g. {self.key}: [{self.low:g}, {self.high:g}]) or a step")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        values = [self.low + i * self.step for i in range(count)]
        return [int(round(v)) for v in values] if self.integer else [round(v, 12) for v in values]

    def as_dict(self) -> dict:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out = {"low": self.low, "high": self.high, "log": self.log, "integer": self.integer}
        return {**out, "step": self.step} if self.step is not None else out


@dataclass(frozen=True)
class SearchSpace:
    """The searched keys, in the order given; ``source``: where the space came from (a file, or
    "default space of <family>")."""

    params: tuple[Param, ...]
    source: str

    def signature(self) -> str:
        """The space as canonical JSON: a study stores it, and refuses another space under its name."""
        return json.dumps({p.key: p.as_dict() for p in self.params}, sort_keys=True)

    def as_tree(self) -> dict:
        """The space as --space YAML takes it (parse_space of it gives this space again)."""
        tree = {}
        for p in self.params:
            if p.choices is not None:
                tree[p.key] = list(p.choices)
            else:
                low, high = (int(p.low), int(p.high)) if p.integer else (p.low, p.high)
                tree[p.key] = {"low": low, "high": high, **({"log": True} if p.log else {}),
                               **({"step": p.step} if p.step is not None else {})}
        return tree

    def grid(self) -> dict[str, list]:
        """{key: values} for Optuna's GridSampler; NeuroclassError when a range has no step."""
        return {p.key: p.grid_values() for p in self.params}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def describe(self) -> str:
        """'optim.lr 0.0001..0.1 (log), train.batch_size {64, 128, 256}'"""
        parts = []
        for p in self.params:
            if p.choices is not None:
                parts.append(f"{p.key} {{{', '.join(str(c) for c in p.choices)}}}")
            else:
                extra = " (log)" if p.log else (f" step {p.step:g}" if p.step else "")
                parts.append(f"{p.key} {p.low:g}..{p.high:g}{extra}")
        return ", ".join(parts)


def suggest(trial, space: SearchSpace) -> dict[str, Any]:
    """The trial's values of every key of ``space`` (Optuna's suggest_* API). ``trial``: an
    optuna.Trial. Returns {key: value}."""
    values = {}
    for p in space.params:
        if p.choices is not None:
            values[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.integer:
            values[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            values[p.key] = trial.suggest_float(p.key, p.low, p.high, step=p.step, log=p.log)
    return values


def load_space(path: str | Path, base: Config) -> SearchSpace:
    """The space in the YAML file ``path``, checked against ``base`` (the config the trials start
    from). Raises NeuroclassError naming the file and key: missing file, not YAML, not a mapping,
    empty, an unknown key (with did-you-mean), a bad range, or a value the key does not take."""
    p = Path(path)
    if not p.is_file():
        raise NeuroclassError(f"--space '{p}': file not found; give a YAML file of config keys and values")
    try:
        tree = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise NeuroclassError(f"--space '{p}' is not valid YAML: {str(exc).splitlines()[0]}") from None
    if tree is None or tree == {}:
        raise NeuroclassError(f"--space '{p}' is empty; give at least one key, e.g. optim.lr: "
                              "{low: 1.0e-4, high: 1.0e-1, log: true}")
    if not isinstance(tree, dict):
        raise NeuroclassError(f"--space '{p}' must be a mapping of config keys to values or ranges")
    return parse_space(tree, base, str(p))


def parse_space(tree: dict, base: Config, source: str) -> SearchSpace:
    """A space from its mapping (see the module docstring), checked against ``base``."""
    if not tree:
        raise NeuroclassError(f"{source}: the search space is empty; give at least one key")
    params = tuple(_param(str(key), spec, base, source) for key, spec in tree.items())
    for param in params:
        _check_values(param, base, source)
    return SearchSpace(params, source)


def _param(key: str, spec: Any, base: Config, source: str) -> Param:
    where = f"{source}: {key}"
    if isinstance(spec, list):
        if not spec:
            raise NeuroclassError(f"{where}: an empty list of values; give at least one")
        return Param(key, choices=tuple(spec))
    if not isinstance(spec, dict):
        raise NeuroclassError(f"{where}: give a list of values or a range {{low: .., high: ..}}. "
                              f"Got {spec!r} instead.")
    unknown = set(spec) - {"low", "high", "log", "step"}
    if unknown or not {"low", "high"} <= set(spec):
        raise NeuroclassError(f"{where}: a range takes low, high and optionally log or step. "
                              f"Got {', '.join(map(str, spec))} instead.")
    low, high, log, step = spec["low"], spec["high"], bool(spec.get("log", False)), spec.get("step")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
        raise NeuroclassError(f"{where}: a range needs numbers low < high. Got low={low!r}, high={high!r}.")
    if log and low <= 0:
        raise NeuroclassError(f"{where}: a log range needs low > 0. Got {low!r}; use a small positive "
                              "low (e.g. 1.0e-6) or drop log")
    if step is not None and (log or not isinstance(step, (int, float)) or step <= 0):
        raise NeuroclassError(f"{where}: step must be a number > 0 and cannot be combined with log. "
                              f"Got {step!r}.")
    integer = field_type(base, key, source) is int
    if integer and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise NeuroclassError(f"{where}: the key takes whole numbers; give whole-number low, high and step")
    return Param(key, low=float(low), high=float(high), log=log, step=None if step is None else float(step),
                 integer=integer)


def field_type(base: Config, key: str, source: str = "--space") -> type:
    """The Python type of config key ``key`` (int, float, str, bool, list, ...); model.options.*
    from the family of ``base`` (or of the space's model.name). NeuroclassError for an unknown key."""
    parts = key.split(".")
    if parts[:2] == ["model", "options"] and len(parts) == 3:
        name = base.model.name
        if name == AUTO:
            raise NeuroclassError(f"{source}: {key} belongs to a model family; pass --model NAME with it")
        return _hint(options_type(name), parts[2], key, source)
    node: type = Config
    for i, part in enumerate(parts):
        hint = _hint(node, part, ".".join(parts[: i + 1]), source)
        if i == len(parts) - 1:
            return hint
        if not dataclasses.is_dataclass(hint):
            raise NeuroclassError(f"{source}: unknown config key '{key}': '{part}' is not a section")
        node = hint
    raise NeuroclassError(f"{source}: unknown config key '{key}'")


def _hint(cls: type, name: str, where: str, source: str) -> type:
    hints = typing.get_type_hints(cls)
    if name not in hints:
        close = closest(name, list(hints))  # suggested as the whole key ('optim.lr'), as it was given
        suggestion = f" Did you mean '{where[: len(where) - len(name)]}{close}'?" if close else ""
        raise NeuroclassError(f"{source}: unknown config key '{where}'." + suggestion
                              + f" Valid keys here: {', '.join(hints)}.")
    hint = hints[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint


def _check_values(param: Param, base: Config, source: str) -> None:
    """Each listed value, and both ends of a range, must be a valid value of the key."""
    values = list(param.choices) if param.choices is not None else [param.low, param.high]
    if param.integer:
        values = [int(v) for v in values]
    for value in values:
        try:
            apply_params(base, {param.key: value})
        except NeuroclassError as exc:
            if str(exc).startswith("unknown config key"):
                raise NeuroclassError(f"{source}: {exc}") from None
            raise NeuroclassError(f"{source}: {param.key}={value!r} is not a valid value: {exc}") from None


def apply_params(base: Config, params: dict[str, Any]) -> Config:
    """``base`` with the trial's values set (validated like --set). A searched model.name starts
    from that family's default options, as ``--model`` does. Raises NeuroclassError."""
    tree = to_dict(base)
    name = params.get("model.name")
    if name is not None and name != base.model.name:
        tree["model"]["options"] = {}
    for key, value in params.items():
        node = tree
        *sections, last = key.split(".")
        for part in sections:
            node = node.setdefault(part, {})
        node[last] = value
    cfg = load_config(values=tree)
    check_family_config(cfg.model)
    return cfg


def base_values(base: Config, space: SearchSpace) -> dict[str, Any]:
    """The values ``base`` itself gives the searched keys, where the space contains them: the
    search's first trial (so that its best is never a configuration worse than the defaults, at the
    trials' budget). A key whose base value lies outside the space (or is unset, e.g. an automatic
    batch size) is left to the sampler."""
    tree = to_dict(base)
    options = recorded_options(base.model) if base.model.name != AUTO else {}
    found = {}
    for p in space.params:
        *sections, last = p.key.split(".")
        if sections == ["model", "options"]:
            value = options.get(last)
        else:
            node = tree
            for part in sections:
                node = node.get(part, {})
            value = node.get(last)
        if _contains(p, value):
            found[p.key] = value
    return found


def _contains(p: Param, value: Any) -> bool:
    if value is None or isinstance(value, (dict, list)):
        return False
    if p.choices is not None:
        return value in p.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not p.low <= value <= p.high:
        return False
    return p.step is None or abs((value - p.low) / p.step - round((value - p.low) / p.step)) < 1e-9


# What every family searches: the peak learning rate and weight decay (log-uniform around the
# defaults), label smoothing and the batch size. A family adds its regularisation.
COMMON_SPACE = {
    "optim.lr": {"low": 5e-4, "high": 2e-2, "log": True},
    "optim.weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    "train.label_smoothing": {"low": 0.0, "high": 0.2},
    "train.batch_size": [64, 128, 256],
}
FAMILY_SPACE = {
    "mlp": {"model.options.dropout": {"low": 0.0, "high": 0.5}},
    "cnn": {"model.options.dropout": {"low": 0.0, "high": 0.5}},
    "resnet": {"model.options.dropout": {"low": 0.0, "high": 0.3}},
    "inception": {"model.options.dropout": {"low": 0.0, "high": 0.5}},
    "vit": {"model.options.dropout": {"low": 0.0, "high": 0.3}},
}
# A grid of the same keys (3 x 2 x 2 = 12 trials): learning rates a factor 4 apart around the default.
COMMON_GRID = {"optim.lr": [1e-3, 4e-3, 1.6e-2], "optim.weight_decay": [5e-5, 5e-4],
               "train.label_smoothing": [0.0, 0.1]}


def default_space(base: Config, grid: bool = False) -> SearchSpace:
    """The space searched without --space: COMMON_SPACE plus the family's own (FAMILY_SPACE) when
    the model family is named (model.name=auto is chosen per dataset later, so only the common
    keys apply); ``grid``: the discrete COMMON_GRID for --sampler grid. A classical family searches
    its own options, the glassbox family its own space (training/glassbox_settings.py: none of the
    settings it leaves out, such as train.label_smoothing)."""
    family = base.model.name
    if is_classical(family):  # the family's own options; no learning rate or batches
        tree = CLASSICAL.get(family).space
        if grid:
            raise NeuroclassError(f"--sampler grid: {family} has no default grid; give one with --space "
                                  "(a list of values for each key)")
    elif is_glassbox(family):  # the NumPy network: no label smoothing, weight average or schedule
        tree = dict(GLASSBOX_GRID if grid else GLASSBOX_SPACE)
    else:
        tree = dict(COMMON_GRID) if grid else {**COMMON_SPACE, **FAMILY_SPACE.get(family, {})}
    what = "default grid" if grid else "default space"
    return parse_space(tree, base, f"{what} of {family if family != AUTO else 'every family'}")
