"""The model registry: a family name -> its config dataclass and builder.

A model name is a family (``resnet``) or, for families with an ``arch`` option, ``FAMILY:ARCH``
(``tv:resnet18`` is family ``tv`` with ``arch=resnet18``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from torch import nn

from neuroclass.config import ModelConfig
from neuroclass.errors import NeuroclassError
from neuroclass.registry import Registry
from neuroclass.rules import build_dataclass, check_rule, rule


@dataclass(frozen=True)
class ModelFamily:
    name: str
    config: type  # a frozen dataclass of the family's options
    build: Callable[..., nn.Module]  # build(cfg, input_shape, num_classes) -> nn.Module
    summary: str
    # named option presets, cheapest first (models/sizing.py picks one to fit a time budget), and
    # the fewest epochs a size should get within the budget to be worth its cost
    sizes: tuple = ()  # ((name, {option: value}), ...)
    min_epochs: float = 5.0


MODELS: Registry[ModelFamily] = Registry("model")


def register_model(name: str, config: type, summary: str, sizes: tuple = (),
                   min_epochs: float = 5.0) -> Callable:
    """Decorator for a builder ``fn(cfg, input_shape, num_classes) -> nn.Module``."""

    def add(build: Callable) -> Callable:
        MODELS.register(name)(ModelFamily(name, config, build, summary, tuple(sizes), min_epochs))
        return build

    return add


def split_name(name: str, options: dict) -> tuple[str, dict]:
    """A model name and its options -> (family name, options), moving ``:ARCH`` into the options.

    >>> split_name("tv:resnet18", {"resize": 64})
    ('tv', {'resize': 64, 'arch': 'resnet18'})
    >>> split_name("cnn", {})
    ('cnn', {})
    """
    if ":" not in name:
        return name, dict(options)
    family, arch = name.split(":", 1)
    if "arch" not in {f.name for f in dataclasses.fields(MODELS.get(family).config)}:
        raise NeuroclassError(f"model '{name}': family '{family}' has no architectures to pick "
                              f"with ':'; use model.name={family}")
    if options.get("arch", arch) != arch:
        raise NeuroclassError(f"model '{name}' names arch '{arch}' but model.options.arch is "
                              f"'{options['arch']}'; give the architecture once")
    return family, {**options, "arch": arch}


def resolve(name: str, options: dict) -> tuple[ModelFamily, object]:
    """Check a model name and its options (unknown keys get a did-you-mean) -> (family, config)."""
    family_name, options = split_name(name, options)
    family = MODELS.get(family_name)
    return family, build_dataclass(family.config, options, "model.options.")


def family_options(name: str, options: dict):
    """Check a family's options (unknown keys get a did-you-mean) -> its config dataclass."""
    return resolve(name, options)[1]


def resolved_options(name: str, options: dict) -> dict:
    return dataclasses.asdict(family_options(name, options))


SIZE_WORDS = ("auto", "default")  # model.size values every family takes (models/sizing.py)


def check_model_config(cfg: ModelConfig) -> None:
    """Check a config's model section against the registered families, before any data loads:
    ``name`` (a family, did-you-mean), ``size`` (``auto``, ``default`` or one of the family's
    sizes) and ``options`` (each field's rule, then the family's ``validate``), with the size's
    preset under the options as the model will be built. Raises NeuroclassError naming the field.

    >>> check_model_config(ModelConfig(name="cnn", size="huge"))
    Traceback (most recent call last):
    neuroclass.errors.NeuroclassError: The 'model.size' parameter must be auto, default or a size of cnn
    (s, m, l). Got 'huge' instead.
    """
    family_name, options = split_name(cfg.name, cfg.options)
    family = MODELS.get(family_name)
    sizes = dict(family.sizes)
    allowed = (f"auto, default or a size of {family.name} ({', '.join(sizes)})" if sizes
               else f"auto or default ({family.name} has no named sizes)")
    check_rule("model.size", cfg.size, rule(choices=SIZE_WORDS + tuple(sizes), doc=allowed)["rule"])
    # "auto" builds the defaults, or with a time budget whichever size fits it: options that fit
    # none of them fail (as every size would), options that fit one of them pass
    if cfg.size in sizes:
        presets = [sizes[cfg.size]]
    else:
        presets = [{}] + (list(sizes.values()) if cfg.size == "auto" else [])
    first_error = None
    for preset in presets:
        try:
            build_dataclass(family.config, {**preset, **options}, "model.options.")
            return
        except NeuroclassError as exc:
            first_error = first_error or exc
    raise first_error
