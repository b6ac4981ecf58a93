"""Model sizes: named option presets per family.

A family registers its sizes cheapest first (``register_model(..., sizes=..., min_epochs=...)``).
``model.size`` names one, or is ``default`` (the family's own defaults) or ``auto`` (with a time
budget, training/sizing.py times the sizes and picks one). Options the user sets win over every
size's preset.
"""
from __future__ import annotations

from neuroclass.config import ModelConfig
from neuroclass.errors import NeuroclassError
from neuroclass.models.registry import MODELS, ModelFamily, split_name

AUTO, DEFAULT = "auto", "default"


def family_of(cfg: ModelConfig) -> ModelFamily:
    return MODELS.get(split_name(cfg.name, cfg.options)[0])


def size_names(family: ModelFamily) -> list[str]:
    return [name for name, _ in family.sizes]


def sized_options(cfg: ModelConfig) -> dict:
    """The options a model is built with: ``cfg.size``'s preset under the user's ``cfg.options``.

    >>> sized_options(ModelConfig(name="cnn", size="m", options={"dropout": 0.2}))["dropout"]
    0.2
    """
    if cfg.size in (AUTO, DEFAULT):
        return dict(cfg.options)
    family = family_of(cfg)
    presets = dict(family.sizes)
    if cfg.size not in presets:
        choices = ", ".join(size_names(family) + [DEFAULT, AUTO])
        raise NeuroclassError(f"model.size '{cfg.size}' is not a size of {family.name}; "
                              f"use one of: {choices}")
    return {**presets[cfg.size], **cfg.options}
