"""The model registry: a family name -> its config dataclass and builder."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from torch import nn

from neuroclass.config import build_dataclass
from neuroclass.registry import Registry


@dataclass(frozen=True)
class ModelFamily:
    name: str
    config: type  # a frozen dataclass of the family's options
    build: Callable[..., nn.Module]  # build(cfg, input_shape, num_classes) -> nn.Module
    summary: str


MODELS: Registry[ModelFamily] = Registry("model")


def register_model(name: str, config: type, summary: str) -> Callable:
    """Decorator for a builder ``fn(cfg, input_shape, num_classes) -> nn.Module``."""

    def add(build: Callable) -> Callable:
        MODELS.register(name)(ModelFamily(name, config, build, summary))
        return build

    return add


def family_options(name: str, options: dict):
    """Check a family's options (unknown keys get a did-you-mean) -> its config dataclass."""
    family = MODELS.get(name)
    return build_dataclass(family.config, dict(options), "model.options.")


def resolved_options(name: str, options: dict) -> dict:
    return dataclasses.asdict(family_options(name, options))
