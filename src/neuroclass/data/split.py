"""Train / validation / test splits: shipped splits are kept, the rest is carved stratified and seeded.

With k folds (data.folds, data.fold) the test split is made as without them, and the rest (the
training pool: train + validation) is dealt into folds by scikit-learn's StratifiedKFold, one of
which validates: k-fold cross-validation (Kohavi 1995, "A study of cross-validation and bootstrap
for accuracy estimation and model selection", IJCAI), stratified so that each fold keeps the
classes' proportions.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from neuroclass.data.dataset import Dataset
from neuroclass.data.issues import SmallClass
from neuroclass.errors import NeuroclassError, counted


@dataclass
class Splits:
    train: Dataset
    val: Dataset | None
    test: Dataset | None  # None when test_fraction is 0 and no test split ships
    indices: dict[str, np.ndarray]  # positions in the loaded dataset, saved in the run folder
    method: dict  # how each split was made, for the record


def _carve(index: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Split ``index`` into (rest, carved) with ``fraction`` carved; stratified when possible.

    A class with a single example in ``index`` cannot be stratified: it stays in ``rest`` (so a
    one-example class is trained on) and the other classes are carved stratified as usual, or at
    random when stratifying fails (fewer examples to carve than classes)."""
    if fraction <= 0:
        return index, index[:0], "none"
    n_carved = max(1, int(round(fraction * len(index))))
    if n_carved >= len(index):
        raise NeuroclassError(f"data: only {counted(len(index), 'example')}; too few to carve a "
                              f"split of {fraction:.0%}; lower data.val_fraction/test_fraction")
    counts = np.bincount(labels[index])
    single = counts[labels[index]] < 2
    try:
        rest, carved = train_test_split(index[~single], test_size=n_carved, random_state=seed,
                                        stratify=labels[index[~single]])
        return np.sort(np.concatenate([rest, index[single]])), np.sort(carved), "stratified"
    except ValueError:  # fewer examples to carve than classes, or too few left to stratify
        pass
    # random, from the classes with two or more examples: a single example is still trained on
    pool = index[~single]
    n_random = min(n_carved, len(pool) - 1)
    if n_random < 1:
        return index, index[:0], "none"
    rest, carved = train_test_split(pool, test_size=n_random, random_state=seed)
    return np.sort(np.concatenate([rest, index[single]])), np.sort(carved), "random"


ROLE = {"train": "trained on", "val": "validated", "test": "tested"}
SPLIT_WORD = {"train": "training", "val": "validation", "test": "testing"}


def classes_missing_from_splits(ds: Dataset, indices: dict[str, np.ndarray]) -> list[SmallClass]:
    """Each class with no example in a split that exists (a non-empty index), with what was done.

    >>> from neuroclass.data.blocks import make_blocks
    >>> ds = make_blocks(n=8)
    >>> classes_missing_from_splits(ds, {"train": np.arange(8), "test": np.array([0])})[0].action
    'kept for training only; it is not tested'
    """
    labels = ds.y.numpy()
    present = [name for name in ("train", "val", "test") if len(indices.get(name, ()))]
    per_split = {name: np.bincount(labels[indices[name]], minlength=len(ds.classes)) for name in present}
    found = []
    for c, name in enumerate(ds.classes):
        missing = tuple(s for s in present if per_split[s][c] == 0)
        if not missing:
            continue
        kept = [s for s in present if s not in missing]
        where = ("kept for training only" if kept == ["train"] else
                 "in " + " and ".join(SPLIT_WORD[s] for s in kept) if kept else "in no split")
        action = f"{where}; it is not {' or '.join(ROLE[s] for s in missing)}"
        found.append(SmallClass(name, int(sum(per_split[s][c] for s in present)), missing, action))
    return found


NAMED_CLASSES = 10  # classes a small-class warning names; the rest are counted (data_issues.json has all)


def describe_missing(found: list[SmallClass]) -> str:
    """One line naming the classes missing from a split (the first NAMED_CLASSES; the rest are
    counted) and what was done.

    >>> describe_missing([SmallClass("rare", 1, ("val", "test"), "kept for training only; it is "
    ...                               "not validated or tested")])  # doctest: +ELLIPSIS
    "class 'rare' has 1 example: kept for training only; it is not validated or tested (...)"
    """
    said = "; ".join(f"class '{c.name}' has {c.count} example{'' if c.count == 1 else 's'}: {c.action}"
                     for c in found[:NAMED_CLASSES])
    if len(found) > NAMED_CLASSES:
        said += f"; and {counted(len(found) - NAMED_CLASSES, 'more class', 'more classes')}"
    return (f"{said} (a split scores only the classes it has examples of, and averaged metrics leave "
            "the others out; add examples of these classes, or raise data.val_fraction / "
            "data.test_fraction)")


def fold_split(pool: np.ndarray, labels: np.ndarray, classes: list[str], folds: int, fold: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val): the positions ``pool`` (int64, sorted) dealt into ``folds`` stratified folds
    by scikit-learn's ``StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)``; fold
    number ``fold`` (1-based, in the order StratifiedKFold yields them) validates, the other folds
    train. Both sorted int64; together they are ``pool``, and the ``folds`` validation sets of
    one pool partition it. ``labels``: int64 labels of the whole dataset (indexed by position).

    Raises NeuroclassError (one line, naming the class, its count and the fix) when a class of the
    pool has fewer examples than ``folds``: some fold would validate none of it.

    >>> train, val = fold_split(np.arange(8), np.array([0, 1] * 4), ["a", "b"], 2, 1, 0)
    >>> len(train), len(val), sorted(np.concatenate([train, val])) == list(range(8))
    (4, 4, True)
    """
    counts = np.bincount(labels[pool], minlength=len(classes))
    present = np.flatnonzero(counts)
    smallest = present[np.argmin(counts[present])]
    if counts[smallest] < folds:
        n = int(counts[smallest])
        raise NeuroclassError(
            f"data.folds={folds}: class '{classes[smallest]}' has only {n} example{'' if n == 1 else 's'} "
            f"outside the test split, fewer than the folds, so some fold would validate none of it; "
            f"use at most {n} folds (--cv {n})" if n >= 2 else
            f"data.folds={folds}: class '{classes[smallest]}' has only 1 example outside the test split, "
            "too few to cross-validate; add examples of it or drop the class")
    chosen = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
                  .split(np.zeros(len(pool)), labels[pool]))[fold - 1]
    return np.sort(pool[chosen[0]]), np.sort(pool[chosen[1]])


def split(ds: Dataset, val_fraction: float, test_fraction: float, seed: int,
          folds: int | None = None, fold: int | None = None) -> Splits:
    """Official/folder splits win; otherwise a seeded stratified split of what is left.

    With ``folds`` (and ``fold``, 1..folds) the test split is the same as without them, and
    the rest -- train and validation together, a shipped validation split included -- is dealt
    into stratified folds (``fold_split``): fold ``fold`` validates, instead of a carved
    ``val_fraction``. The method record then says ``"val": "stratified k-fold"`` with the folds.

    Classes with too few examples to appear in every split are recorded in
    ``ds.issues.small_classes`` and named in one warning (a one-example class is kept for training).
    Raises NeuroclassError when the training split holds only one class, and for folds as
    ``fold_split`` does.

    Example::

        s = split(dataset, val_fraction=0.1, test_fraction=0.2, seed=0)
        s5 = split(dataset, val_fraction=0.1, test_fraction=0.2, seed=0, folds=5, fold=2)
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
    if folds is not None:
        pool = np.setdiff1d(np.union1d(pool, ds.parts.get("val", pool[:0])), test)
        pool, val = fold_split(pool, labels, ds.classes, folds, fold, seed)
        method.update({"val": "stratified k-fold", "folds": folds, "fold": fold})
    elif "val" in ds.parts:
        val, method["val"] = ds.parts["val"], "shipped"
    else:
        pool, val, method["val"] = _carve(pool, labels, val_fraction, seed + 1)
    train = pool
    if len(np.unique(labels[train])) < 2:
        raise NeuroclassError(f"{ds.source or ds.name}: the training split holds only one class")
    indices = {"train": train, "val": val, "test": test}
    ds.issues.small_classes[:] = classes_missing_from_splits(ds, indices)
    if ds.issues.small_classes:
        warnings.warn(f"{ds.source or ds.name}: {describe_missing(ds.issues.small_classes)}", stacklevel=2)
    return Splits(train=ds.subset(train), val=ds.subset(val) if len(val) else None,
                  test=ds.subset(test) if len(test) else None, indices=indices, method=method)
