"""Checks on what a caller feeds the glass-box network: rows of the right width, finite numbers,
labels within the classes. Each failure is one NeuroclassError line naming the argument and the fix.

>>> rows(np.zeros((2, 3)), 3, "x").dtype
dtype('float32')
>>> rows(np.zeros((2, 4)), 3, "x_val")
Traceback (most recent call last):
neuroclass.errors.NeuroclassError: x_val: rows of 4 values, but the network takes 3 inputs; pass rows of 3 values (the width it was built for)
"""
from __future__ import annotations

import numpy as np

from neuroclass.errors import NeuroclassError


def rows(x: np.ndarray, width: int, where: str) -> np.ndarray:
    """``x`` as a C-contiguous (N, width) float32 array (converted once, when it is another
    number type). Raises NeuroclassError when it is not 2-D, not numbers, of another width, or
    holds NaN or infinite values."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise NeuroclassError(f"{where}: values of type {x.dtype} are not numbers; pass float or integer values")
    if x.ndim != 2:
        raise NeuroclassError(f"{where}: expected a 2-D array of rows (N examples x {width} values); got shape "
                              f"{x.shape}; flatten each example to one row, e.g. x.reshape(len(x), -1)")
    if x.shape[1] != width:
        raise NeuroclassError(f"{where}: rows of {x.shape[1]} values, but the network takes {width} inputs; "
                              f"pass rows of {width} values (the width it was built for)")
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argmax(bad.any(axis=1)))
        raise NeuroclassError(f"{where}: {int(bad.sum()):,} values are NaN or infinite (the first in row "
                              f"{first}); replace them or drop those rows")
    return x


def one_row(x: np.ndarray, width: int, where: str = "x") -> np.ndarray:
    """One example, (width,) or (1, width), as a (1, width) float32 row. Raises NeuroclassError
    for several rows, and as ``rows`` does."""
    x = np.asarray(x)
    x = rows(x.reshape(1, -1) if x.ndim == 1 else x, width, where)
    if len(x) != 1:
        raise NeuroclassError(f"{where}: expected one example of {width} values; got {len(x):,} rows; "
                              "pass one of them, e.g. x[0]")
    return x


def labels(y: np.ndarray, n_rows: int, n_classes: int, where: str) -> np.ndarray:
    """``y`` as an (N,) int64 array of class numbers 0..n_classes-1, one per row. Raises
    NeuroclassError for another shape, a non-integer type, or a label out of range."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise NeuroclassError(f"{where}: expected {n_rows:,} labels, one per row; got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise NeuroclassError(f"{where}: labels must be whole numbers 0..{n_classes - 1} (an integer array); "
                              f"got values of type {y.dtype}; map class names to numbers first")
    outside = (y < 0) | (y >= n_classes)
    if outside.any():
        row = int(np.argmax(outside))
        raise NeuroclassError(f"{where}: labels must be 0..{n_classes - 1} (the network has {n_classes} "
                              f"outputs); got {int(y[row])} in row {row}; build the network with more classes "
                              "or fix the labels")
    return y.astype(np.int64, copy=False)
