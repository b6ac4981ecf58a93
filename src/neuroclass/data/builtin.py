"""Built-in datasets: fashion-mnist, mnist (official IDX files), digits (scikit-learn), blocks."""
from __future__ import annotations

import numpy as np
import torch

from neuroclass.data.blocks import make_blocks, parse_options
from neuroclass.data.dataset import Dataset
from neuroclass.data.download import find_local
from neuroclass.data.idx import DIGIT_CLASSES, FASHION_CLASSES, load_idx_folder
from neuroclass.errors import NeuroclassError

BUILTIN = {
    "fashion-mnist": "Zalando's 28x28 grayscale clothing images, 10 classes, 60k train / 10k test",
    "mnist": "handwritten digits, 28x28 grayscale, 10 classes, 60k train / 10k test",
    "digits": "scikit-learn's 8x8 handwritten digits, 1797 images, 10 classes",
    "blocks": "synthetic coloured shapes; options n, size, task=colour|shape, seed, noise",
}


def is_builtin(spec: str) -> bool:
    return spec.split(":", 1)[0] in BUILTIN


def _idx_dataset(name: str, classes: list[str]) -> Dataset:
    folder = find_local(name)
    if folder is None:
        hint = " or, on Debian/Ubuntu as root, apt-get install -y dataset-fashion-mnist" \
            if name == "fashion-mnist" else ""
        raise NeuroclassError(f"{name}: data files not found; run 'neuroclass data get {name}'{hint}")
    ds = load_idx_folder(folder, name, classes)
    ds.source = name
    return ds


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8), 0..16 -> 0..255
    return Dataset(torch.from_numpy(x), torch.from_numpy(bunch.target.astype(np.int64)),
                   [str(c) for c in bunch.target_names], name="digits", kind="image", source="digits")


def load_builtin(spec: str) -> Dataset:
    name, _, options = spec.partition(":")
    if name == "blocks":
        return make_blocks(**parse_options(options))
    if options:
        raise NeuroclassError(f"{name}: takes no options; got '{options}'")
    if name == "fashion-mnist":
        return _idx_dataset(name, FASHION_CLASSES)
    if name == "mnist":
        return _idx_dataset(name, DIGIT_CLASSES)
    return _digits()
