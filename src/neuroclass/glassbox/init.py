"""Starting weights of a dense layer, (D_in, D_out) float32, drawn from a seeded generator.

A weight's spread decides whether signals keep their size through the layers: too wide and
sigmoids saturate (their gradient vanishes), too narrow and every neuron says the same thing.

>>> w = initial_weights("he", 784, 200, np.random.default_rng(0))
>>> w.shape, w.dtype
((784, 200), dtype('float32'))
"""
from __future__ import annotations

import math

import numpy as np

from neuroclass.errors import NeuroclassError


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Normal(0, sqrt(2 / fan_in)): keeps the variance of ReLU activations from layer to layer
    (He, Zhang, Ren & Sun 2015, "Delving deep into rectifiers", eq. 10)."""
    std = math.sqrt(2.0 / fan_in)
    return rng.standard_normal((fan_in, fan_out), dtype=np.float32) * np.float32(std)


def xavier_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform(-a, a), a = sqrt(6 / (fan_in + fan_out)): the "normalized initialization" for tanh
    and sigmoid layers (Glorot & Bengio 2010, eq. 16)."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return (rng.random((fan_in, fan_out), dtype=np.float32) * np.float32(2 * bound)) - np.float32(bound)


def fan_in_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Normal(0, 1 / sqrt(fan_in)): the classic explainers' choice (Rashid 2016; LeCun, Bottou,
    Orr & Mueller 1998, "Efficient BackProp", section 4.6)."""
    std = 1.0 / math.sqrt(fan_in)
    return rng.standard_normal((fan_in, fan_out), dtype=np.float32) * np.float32(std)


INITIALIZERS = {"he": he_normal, "xavier": xavier_uniform, "normal": fan_in_normal}


def initial_weights(name: str, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """(fan_in, fan_out) float32 weights by the initialiser ``name`` (he, xavier or normal).
    Raises NeuroclassError for another name."""
    if name not in INITIALIZERS:
        raise NeuroclassError(f"The 'model.options.init' parameter must be one of "
                              f"{', '.join(repr(n) for n in INITIALIZERS)}. Got {name!r} instead.")
    return INITIALIZERS[name](fan_in, fan_out, rng)
