"""Every config field refuses invalid values with one NeuroclassError that names it, and takes its
boundary values.

The cases are generated from the fields themselves (the idea of scikit-learn's
``check_param_validation``): each field of each config section and of each registered model family's
options gets a value of the wrong type and, from its ``rule(...)`` metadata, values just outside its
bounds, not among its choices, not of its form, or with too few items. A field without a rule (and
not a bool, whose type is its rule) must be listed in FREE with the reason, so that a field added
without a rule fails ``test_every_field_has_a_rule_or_is_listed_free``.
"""
from __future__ import annotations

import dataclasses
import types
import typing

import pytest

from neuroclass.config import (AugmentConfig, Config, DataConfig, ModelConfig, OptimConfig, TrainConfig,
                               load_config)
from neuroclass.errors import NeuroclassError
from neuroclass.models import MODELS
from neuroclass.models.registry import check_model_config, resolve

SECTIONS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "augment": AugmentConfig,
            "train": TrainConfig}
CHECKED_BY_MODELS = "checked against the registered families by models.registry.check_model_config"
FREE = {
    "data.source": "a folder, file or built-in name: checked by the data loader",
    "data.label_column": "a column name: checked against the table's columns by the table loader",
    "data.categorical": "column names: checked against the table's columns by the table loader",
    "data.keep_columns": "column names: checked against the table's columns by the table loader",
    "model.name": CHECKED_BY_MODELS,
    "model.size": CHECKED_BY_MODELS,
    "model.options": CHECKED_BY_MODELS,
    "model.weights": "a file path: checked when the weights load (models/transfer.py)",
    "model.from_run": "a run folder: checked when it loads (models/transfer.py)",
    "out": "any folder path; created when a run finishes",
}
# forms that a pattern rule accepts beside its choices
PATTERN_EXAMPLES = {"train.device": ["cuda:0", "cuda:12"]}


def companions(where: str, value) -> dict:
    """Other fields of the same section that a valid ``value`` needs (the cross-field rules)."""
    if where in ("data.val_fraction", "data.test_fraction"):  # their sum stays < 1
        return {("test_fraction" if where == "data.val_fraction" else "val_fraction"): 0.0}
    if where == "data.folds":  # a number of folds comes with the fold that validates
        return {"fold": 1}
    if where == "data.fold":
        return {"folds": max(2, value)}
    if where == "data.max_features":  # a number of features to keep comes with a selection
        return {"select": "l1"}
    if where == "data.select" and value == "mutual_info":
        return {"max_features": 5}
    if where.startswith("augment.") and where.split(".")[1] in AugmentConfig.OFF_BY_DEFAULT:
        return {"enabled": True}
    if where == "vit.dim":  # a multiple of heads
        return {"heads": 1}
    if where == "resnet.depth":  # each depth comes with one block type
        return {"block": "bottleneck" if value >= 50 else "basic"}
    return {}


# ----------------------------------------------------------------------------- the fields

def config_fields() -> list[tuple[str, type, dataclasses.Field]]:
    """(dotted name, dataclass, field) for every field of every section, and Config's own."""
    out = [(f"{section}.{f.name}", cls, f) for section, cls in SECTIONS.items()
           for f in dataclasses.fields(cls)]
    return out + [(f.name, Config, f) for f in dataclasses.fields(Config) if f.name not in SECTIONS]


def option_fields() -> list[tuple[str, type, dataclasses.Field]]:
    """(family.field, options dataclass, field) for every registered family."""
    return [(f"{name}.{f.name}", MODELS.get(name).config, f) for name in MODELS.names()
            for f in dataclasses.fields(MODELS.get(name).config)]


def field_type(cls: type, f: dataclasses.Field):
    """The field's type with Optional removed: int, float, str, bool, dict, list or list[T]."""
    hint = typing.get_type_hints(cls)[f.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def item_type(hint):
    return typing.get_args(hint)[0] if typing.get_origin(hint) is list else hint


def wrong_types(hint) -> list:
    """Values that are not of type ``hint`` (nor convertible to it)."""
    base = list if typing.get_origin(hint) is list else hint
    values = {bool: ["maybe", 1], int: ["many", 2.5, True], float: ["much", True, float("inf")],
              str: [[1], True], list: [{"a": 1}, 3], dict: [5, [1]]}[base]
    if typing.get_origin(hint) is list and item_type(hint) is not str:
        values.append(["x"])
    return values


def broken(rule: dict, hint) -> list:
    """Values of the right type that break ``rule``: just past each bound, outside the choices,
    of another form, too few items."""
    kind = item_type(hint)
    step = 1 if kind is int else 0.5
    bad = [rule["gt"], rule["ge"] - step if rule["ge"] is not None else None,
           rule["lt"], rule["le"] + step if rule["le"] is not None else None]
    bad = [kind(b) for b in bad if b is not None]
    choices = rule["choices"]() if callable(rule["choices"]) else rule["choices"]
    if choices:
        bad.append(next(i for i in range(min(choices), max(choices) + 2) if i not in choices)
                   if kind is int else f"{choices[0]}-nope")
    if rule["pattern"]:
        bad.append("not:a:form")
    if typing.get_origin(hint) is list:
        bad = [[b] for b in bad]
        if rule["min_items"]:
            bad.append([valid_values(rule, kind)[0]] * (rule["min_items"] - 1))
    return bad


def valid_values(rule: dict, hint, where: str = "") -> list:
    """The boundary values ``rule`` takes: each closed bound, the nearest value inside an open
    one, every choice (a few of a long list), the pattern's examples; lists of one such item."""
    kind = item_type(hint)
    tiny = 1 if kind is int else 1e-6
    good = [rule["ge"], rule["le"], rule["gt"] + tiny if rule["gt"] is not None else None,
            rule["lt"] - tiny if rule["lt"] is not None else None]
    good = [kind(g) for g in good if g is not None]
    choices = rule["choices"]() if callable(rule["choices"]) else rule["choices"]
    good += list(choices)[:3] if callable(rule["choices"]) else list(choices)
    good += PATTERN_EXAMPLES.get(where, [])
    if typing.get_origin(hint) is list:
        return [[g] * max(1, rule["min_items"] or 1) for g in good]
    return good


def cases(fields: list, valid: bool) -> list:
    """pytest params (where, dataclass, field name, value) generated from ``fields``."""
    out = []
    for where, cls, f in fields:
        hint, rule = field_type(cls, f), f.metadata.get("rule")
        if valid:
            values = valid_values(rule, hint, where) if rule else []
        else:
            values = wrong_types(hint) + (broken(rule, hint) if rule else [])
        out += [pytest.param(where, cls, f.name, v, id=f"{where}={v!r}") for v in values]
    return out


# ----------------------------------------------------------------------------- config sections

def load_one(where: str, value, extra: dict | None = None) -> Config:
    if "." not in where:
        return load_config(values={where: value})
    section, name = where.split(".")
    return load_config(values={section: {name: value, **(extra or {})}})


def test_every_field_has_a_rule_or_is_listed_free():
    fields = config_fields() + option_fields()
    unruled = {where for where, cls, f in fields
               if "rule" not in f.metadata and field_type(cls, f) is not bool}
    unlisted, stale = sorted(unruled - set(FREE)), sorted(set(FREE) - unruled)
    assert not unlisted and not stale, ("a field without a rule must be listed in FREE with the reason; "
                                        f"unlisted: {unlisted}, stale: {stale}")


@pytest.mark.parametrize("where, cls, name, value", cases(config_fields(), valid=False))
def test_an_invalid_config_value_fails_naming_the_field(where, cls, name, value):
    with pytest.raises(NeuroclassError) as info:
        load_one(where, value)
    message = str(info.value)
    assert where in message and "\n" not in message, message


@pytest.mark.parametrize("where, cls, name, value", cases(config_fields(), valid=True))
def test_a_boundary_config_value_passes(where, cls, name, value):
    cfg = load_one(where, value, companions(where, value))
    section, _ = where.split(".")
    assert getattr(getattr(cfg, section), name) == value


def test_the_defaults_pass_their_own_rules():
    defaults = dataclasses.asdict(Config())
    assert load_config(values=defaults) == Config()


# ----------------------------------------------------------------------------- model families

@pytest.mark.parametrize("where, cls, name, value", cases(option_fields(), valid=False))
def test_an_invalid_model_option_fails_naming_it(where, cls, name, value):
    family = where.split(".")[0]
    with pytest.raises(NeuroclassError) as info:
        resolve(family, {name: value})
    message = str(info.value)
    assert f"model.options.{name}" in message and "\n" not in message, message


@pytest.mark.parametrize("where, cls, name, value", cases(option_fields(), valid=True))
def test_a_boundary_model_option_passes(where, cls, name, value):
    family = where.split(".")[0]
    _, options = resolve(family, {name: value, **companions(where, value)})
    assert getattr(options, name) == value


@pytest.mark.parametrize("family", MODELS.names())
def test_every_size_of_every_family_passes_the_model_check(family):
    for size in ["auto", "default", *(name for name, _ in MODELS.get(family).sizes)]:
        check_model_config(ModelConfig(name=family, size=size))


@pytest.mark.parametrize("family", MODELS.names())
def test_an_unknown_size_fails_naming_the_family_sizes(family):
    with pytest.raises(NeuroclassError) as info:
        check_model_config(ModelConfig(name=family, size="huge"))
    message = str(info.value)
    assert "'model.size'" in message and "'huge'" in message
    for word in ["auto", "default", *(name for name, _ in MODELS.get(family).sizes)]:
        assert word in message, message


@pytest.mark.parametrize("model, words", [
    (ModelConfig(name="resnt"), ["unknown model 'resnt'", "Did you mean 'resnet'"]),
    (ModelConfig(name="mlp", options={"hiden": [8]}), ["model.options.hiden", "Did you mean 'model.options.hidden'"]),
    (ModelConfig(name="mlp", options={"hidden": [8, 0]}), ["'model.options.hidden'", "values > 0"]),
    # a size's preset sits under the options: vit size s has dim 64, which 6 heads do not divide
    (ModelConfig(name="vit", size="s", options={"heads": 6}),
     ["model.options.dim (64)", "multiple of heads"]),
    (ModelConfig(name="resnet", options={"depth": 50}), ["model.options.block=bottleneck"]),
    (ModelConfig(name="tv:resnet19"), ["'model.options.arch'", "Did you mean 'resnet18'"]),
])
def test_the_model_check_names_what_is_wrong(model, words):
    with pytest.raises(NeuroclassError) as info:
        check_model_config(model)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_auto_size_takes_options_that_fit_one_of_the_sizes():
    # dim 64 (the default) is no multiple of 6 heads, but vit's sizes xs (48) and l (96) are
    check_model_config(ModelConfig(name="vit", size="auto", options={"heads": 6}))
    with pytest.raises(NeuroclassError, match="multiple of heads"):
        check_model_config(ModelConfig(name="vit", size="default", options={"heads": 6}))


def test_model_size_fails_at_config_time_in_the_cli(tmp_path, capsys):
    from neuroclass.cli import main

    rc = main(["train", "blocks:n=32,size=8", "--out", str(tmp_path / "runs"), "--model", "cnn",
               "--set", "model.size=huge", "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "'model.size'" in err[0] and "s, m, l" in err[0], err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ----------------------------------------------------------------------------- cross-field rules

@pytest.mark.parametrize("overrides, words", [
    (["data.val_fraction=0.5", "data.test_fraction=0.5"], ["data.val_fraction + data.test_fraction", "< 1"]),
    (["augment.mixup=0.4"], ["augment.mixup=0.4", "augment.enabled=true"]),
    (["augment.cutmix=1", "augment.shift=2"], ["augment.shift=2", "augment.cutmix=1", "augment.enabled"]),
    (["train.head_epochs=1", "train.freeze=true"], ["train.head_epochs=1", "train.freeze=true"]),
    (["train.head_epochs=3", "train.epochs=3"], ["train.head_epochs must be < train.epochs (3)", "Got 3"]),
    (["optim.nesterov=true"], ["optim.nesterov=true needs optim.name=sgd", "'adamw'"]),
    (["optim.nesterov=true", "optim.name=sgd", "optim.momentum=0"], ["optim.momentum > 0"]),
])
def test_fields_that_constrain_each_other(overrides, words):
    with pytest.raises(NeuroclassError) as info:
        load_config(overrides=overrides)
    for word in words:
        assert word in str(info.value), str(info.value)


@pytest.mark.parametrize("overrides", [
    ["data.val_fraction=0.5", "data.test_fraction=0.49"],
    ["augment.enabled=true", "augment.mixup=0.4", "augment.cutmix=1"],
    ["train.head_epochs=2", "train.epochs=3"],
    ["train.head_epochs=0", "train.freeze=true"],
    ["optim.nesterov=true", "optim.name=sgd", "optim.momentum=0.9"],
])
def test_combinations_within_the_rules_pass(overrides):
    load_config(overrides=overrides)


def test_list_and_duration_values_are_converted_before_their_rules():
    cfg = load_config(overrides=["train.time_budget=2m", "data.categorical=a,1,yes"])
    assert cfg.train.time_budget == 120.0
    assert cfg.data.categorical == ["a", "1", "yes"]  # column names stay text
    assert resolve("mlp", {"hidden": "512,256"})[1].hidden == [512, 256]
