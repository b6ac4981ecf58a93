"""Train / validation / test splits: shipped splits are kept, the rest is carved stratified and seeded."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from neuroclass.data.dataset import Dataset
from neuroclass.errors import NeuroclassError


@dataclass
class Splits:
    train: Dataset
    val: Dataset | None
    test: Dataset | None  # None when test_fraction is 0 and no test split ships
    indices: dict[str, np.ndarray]  # positions in the loaded dataset, saved in the run folder
    method: dict  # how each split was made, for the record


def _carve(index: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Split ``index`` into (rest, carved) with ``fraction`` carved; stratified when possible."""
    if fraction <= 0:
        return index, index[:0], "none"
    n_carved = max(1, int(round(fraction * len(index))))
    if n_carved >= len(index):
        raise NeuroclassError(f"data: only {len(index)} examples; too few to carve a "
                              f"{fraction:.0%} split; lower data.val_fraction/test_fraction")
    try:
        rest, carved = train_test_split(index, test_size=n_carved, random_state=seed,
                                        stratify=labels[index])
        return np.sort(rest), np.sort(carved), "stratified"
    except ValueError:  # a class with a single example cannot be stratified
        rest, carved = train_test_split(index, test_size=n_carved, random_state=seed)
        return np.sort(rest), np.sort(carved), "random"


def split(ds: Dataset, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    """Official/folder splits win; otherwise a seeded stratified split of what is left.

    Example::

        s = split(dataset, val_fraction=0.1, test_fraction=0.2, seed=0)
    """
    labels = ds.y.numpy()
    method = {"seed": seed}
    if "test" in ds.parts:
        test = ds.parts["test"]
        pool = ds.parts.get("train", np.setdiff1d(np.arange(len(ds)), test))
        method["test"] = "shipped"
    else:
        pool = ds.parts.get("train", np.arange(len(ds)))
        pool, test, method["test"] = _carve(pool, labels, test_fraction, seed)
    if "val" in ds.parts:
        val, method["val"] = ds.parts["val"], "shipped"
    else:
        pool, val, method["val"] = _carve(pool, labels, val_fraction, seed + 1)
    train = pool
    if len(np.unique(labels[train])) < 2:
        raise NeuroclassError(f"{ds.source or ds.name}: the training split holds only one class")
    indices = {"train": train, "val": val, "test": test}
    return Splits(train=ds.subset(train), val=ds.subset(val) if len(val) else None,
                  test=ds.subset(test) if len(test) else None, indices=indices, method=method)
