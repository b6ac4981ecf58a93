"""`blocks`: a synthetic image task of coloured shapes, sorted by colour or by shape.

Sized by options so tests can make a tiny, learnable dataset in milliseconds:
``blocks:n=300,size=16,task=shape,seed=1``.
"""
from __future__ import annotations

import numpy as np
import torch

from neuroclass.data.dataset import Dataset
from neuroclass.errors import NeuroclassError

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (230, 210, 40)}
SHAPES = ("square", "disc", "cross", "stripe")
DEFAULTS = {"n": 600, "size": 16, "task": "colour", "seed": 0, "noise": 20}


def _mask(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean (size, size) mask of one shape at a random place and scale."""
    r = rng.integers(max(2, size // 5), max(3, size // 3) + 1)
    cy, cx = rng.integers(r, size - r, size=2)
    yy, xx = np.mgrid[:size, :size]
    dy, dx = yy - cy, xx - cx
    if shape == "square":
        return (np.abs(dy) <= r) & (np.abs(dx) <= r)
    if shape == "disc":
        return dy**2 + dx**2 <= r**2
    if shape == "cross":
        w = max(1, r // 3)
        return ((np.abs(dy) <= w) & (np.abs(dx) <= r)) | ((np.abs(dx) <= w) & (np.abs(dy) <= r))
    return (np.abs(dy) <= max(1, r // 3)) & (np.abs(dx) <= r)  # horizontal stripe


def parse_options(text: str) -> dict:
    """'n=300,size=16' -> {'n': 300, 'size': 16} merged over DEFAULTS, checked."""
    opts = dict(DEFAULTS)
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in DEFAULTS:
            raise NeuroclassError(f"blocks: unknown option '{key}'; options: {', '.join(DEFAULTS)}")
        opts[key] = value if key == "task" else int(value)
    if opts["task"] not in ("colour", "color", "shape"):
        raise NeuroclassError(f"blocks: task must be 'colour' or 'shape'; got '{opts['task']}'")
    if opts["n"] < 8 or opts["size"] < 8:
        raise NeuroclassError("blocks: n and size must be at least 8")
    return opts


def make_blocks(n: int = 600, size: int = 16, task: str = "colour", seed: int = 0,
                noise: int = 20) -> Dataset:
    """n RGB images (n, 3, size, size); labels are the colour or the shape, balanced."""
    rng = np.random.default_rng(seed)
    colour_names, colours = list(COLOURS), np.array(list(COLOURS.values()), dtype=np.float64)
    by_shape = task == "shape"
    classes = list(SHAPES) if by_shape else colour_names
    y = np.arange(n) % len(classes)
    rng.shuffle(y)
    x = rng.normal(30, noise, size=(n, size, size, 3))
    for i, label in enumerate(y):
        shape = SHAPES[label] if by_shape else SHAPES[rng.integers(len(SHAPES))]
        colour = colours[rng.integers(len(colours))] if by_shape else colours[label]
        x[i][_mask(shape, size, rng)] = colour + rng.normal(0, noise, size=3)
    x = np.clip(x, 0, 255).astype(np.uint8).transpose(0, 3, 1, 2)
    return Dataset(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64)),
                   classes, name="blocks", kind="image", source=f"blocks:n={n},size={size},task={task}")
