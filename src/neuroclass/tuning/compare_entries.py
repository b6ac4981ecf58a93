"""The entries of a comparison (``neuroclass compare DATA --models ...``): what each names, and its
config, all checked before anything trains.

An entry is a family name (``mlp``, ``xgboost``, ``tv:resnet18``), optionally with its own
``model.options`` in brackets (``svm[kernel=linear]``, ``knn[n_neighbors=3,weights=distance]``;
values read as ``--set`` reads them) and, for image data and a classical family, the hand-made
features it fits on (``svm+hog``, ``lightgbm+hog+lbp``: ``data.features``).

>>> [e.name for e in parse_entries("mlp, svm[kernel=linear]+hog, lightgbm+lbp+hog")]
['mlp', 'svm[kernel=linear]+hog', 'lightgbm+hog+lbp']
>>> parse_entries("svm[kernel=linear]+hog")[0].overrides()
['model.options.kernel=linear']
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from neuroclass import data as data_mod
from neuroclass.config import Config, load_config, to_dict
from neuroclass.data.builtin import is_builtin
from neuroclass.errors import NeuroclassError
from neuroclass.registry import did_you_mean
from neuroclass.training.families import check_family_config, check_features, family_names
from neuroclass.training.glassbox_settings import glassbox_config

FEATURES = ("hog", "lbp")  # the parts of data.features, in the order data.features spells them
ENTRY = re.compile(r"(?P<family>[A-Za-z0-9_.:-]+)(?:\[(?P<options>.*)\])?(?P<features>(?:\+[^+\[\]]*)*)")


@dataclass(frozen=True)
class Entry:
    """One entry: ``name`` as the leaderboard shows it (features in data.features' order),
    ``family`` (model.name), ``features`` (data.features: "none", "hog", "lbp" or "hog+lbp") and
    ``options``: (key, value text) pairs of model.options, as given in brackets."""

    name: str
    family: str
    features: str = "none"
    options: tuple[tuple[str, str], ...] = ()

    def overrides(self) -> list[str]:
        """The entry's options as ``--set`` overrides."""
        return [f"model.options.{key}={value}" for key, value in self.options]

    def given(self) -> set[str]:
        """The dotted config keys the entry sets: model.name, data.features and its options.

        >>> sorted(Entry("svm[C=10]+hog", "svm", "hog", (("C", "10"),)).given())
        ['data.features', 'model.name', 'model.options.C']
        """
        return {"model.name", "data.features", *(f"model.options.{key}" for key, _ in self.options)}

    @property
    def slug(self) -> str:
        """A file-name-safe name for the entry's run folder.

        >>> Entry("svm[kernel=linear]+hog", "svm", "hog", (("kernel", "linear"),)).slug
        'svm-kernel-linear-hog'
        """
        return re.sub(r"[^A-Za-z0-9_.]+", "-", self.name).strip("-") or "entry"


def split_top(text: str, what: str) -> list[str]:
    """``text`` split at the commas outside brackets, each part stripped.

    >>> split_top("a[x=1,y=[2,3]], b", "--models")
    ['a[x=1,y=[2,3]]', 'b']
    """
    parts, depth, current = [], 0, []
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            raise NeuroclassError(f"{what} '{text}': a ']' closes no '['; write e.g. svm[kernel=linear]")
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth:
        raise NeuroclassError(f"{what} '{text}': a '[' is not closed; write e.g. svm[kernel=linear]")
    return [*parts, "".join(current).strip()]


def parse_entry(text: str) -> Entry:
    """One entry from its text (see the module's docstring). Raises NeuroclassError naming it for
    an unknown family (with a did-you-mean), unknown features or a malformed option."""
    match = ENTRY.fullmatch(text)
    if not match:
        raise NeuroclassError(f"--models entry '{text}' is not FAMILY[KEY=VALUE,...]+FEATURES; "
                              "write e.g. mlp, xgboost, svm[kernel=linear]+hog")
    family = match["family"]
    names = family_names()
    if family.split(":", 1)[0] not in names:
        raise NeuroclassError(f"--models entry '{text}': unknown model family '{family}'; choose one of: "
                              f"{', '.join(names)}." + did_you_mean(family, names))
    wanted = [part for part in match["features"].split("+") if part] if match["features"] else []
    for part in wanted:
        if part not in FEATURES:
            raise NeuroclassError(f"--models entry '{text}': unknown features '{part}'; image features are "
                                  f"{' and '.join(FEATURES)} (e.g. svm+hog, lightgbm+hog+lbp)"
                                  + did_you_mean(part, list(FEATURES)))
    if len(set(wanted)) != len(wanted):
        raise NeuroclassError(f"--models entry '{text}' names a feature twice; write e.g. svm+hog+lbp")
    features = "+".join(f for f in FEATURES if f in wanted) or "none"
    options = tuple(_option(text, item) for item in split_top(match["options"], f"--models entry '{text}'")
                    ) if match["options"] else ()
    name = family + (f"[{match['options']}]" if options else "") + ("" if features == "none" else f"+{features}")
    return Entry(name, family, features, options)


def _option(entry: str, item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
        raise NeuroclassError(f"--models entry '{entry}': option '{item}' is not KEY=VALUE; write e.g. "
                              "svm[kernel=linear,C=10]")
    return key.strip(), value.strip()


def parse_entries(models: str | list[str]) -> list[Entry]:
    """The entries of ``--models`` (a comma-separated text, or a list of entry texts). Raises
    NeuroclassError for an empty list, a bad entry or an entry given twice."""
    texts = split_top(models, "--models") if isinstance(models, str) else [str(m).strip() for m in models]
    texts = [t for t in texts if t]
    if not texts:
        raise NeuroclassError("--models is empty; name the families to compare, e.g. --models mlp,logreg,xgboost")
    entries, seen = [], {}
    for text in texts:
        entry = parse_entry(text)
        if entry.name in seen:
            raise NeuroclassError(f"--models names '{entry.name}' twice ('{seen[entry.name]}' and '{text}'); "
                                  "give each entry once")
        seen[entry.name] = text
        entries.append(entry)
    return entries


def entry_config(base: Config, entry: Entry, given: Optional[Collection[str]] = None) -> Config:
    """``base`` with the entry's family, options and features. The base's model.options stay only
    for its own family (they belong to it); the entry's options go over them. ``given``: the
    dotted keys the user set in ``base`` (config.given_keys), with the entry's own, decide a
    glassbox entry's settings (training/glassbox_settings.py: a value given is kept, one left
    unset takes the preset's); None: ``base`` has no such record, and values equal to the
    config's defaults count as unset. Raises NeuroclassError, naming the entry, for options, a
    size or settings the family does not take."""
    tree = to_dict(base)
    if tree["model"]["name"] != entry.family:
        tree["model"]["options"] = {}
    tree["model"]["name"] = entry.family
    tree["data"]["features"] = entry.features
    try:
        cfg = load_config(values=tree, overrides=entry.overrides())
        check_family_config(cfg.model)
        cfg = glassbox_config(cfg, None if given is None else {*given, *entry.given()})
    except NeuroclassError as exc:
        raise NeuroclassError(f"--models entry '{entry.name}': {exc}") from None
    return cfg


def data_kind(cfg: Config) -> str:
    """"image" or "table": what ``cfg.data.source`` holds. Built-in data and folders are images;
    a file (a table, or arrays) is loaded to tell. Raises NeuroclassError for missing or bad data."""
    source = cfg.data.source
    if is_builtin(source) or Path(source).expanduser().is_dir():
        return "image"
    return data_mod.load(cfg.data).kind


def checked_configs(base: Config, entries: list[Entry], given: Optional[Collection[str]] = None) -> list[Config]:
    """Each entry's config (``entry_config``, with the keys the user ``given``), checked against
    the family and the data's kind (features need image data and a classical family) before
    anything trains. Raises NeuroclassError naming the entry, or the data when it cannot be read."""
    configs = [entry_config(base, entry, given) for entry in entries]
    kind = data_kind(base)  # missing or bad data fails here, once, rather than in every entry
    for entry, cfg in zip(entries, configs):
        try:
            check_features(cfg, kind)
        except NeuroclassError as exc:
            raise NeuroclassError(f"--models entry '{entry.name}': {exc}") from None
    return configs
