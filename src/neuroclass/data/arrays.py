"""In-memory arrays (NumPy, an .npz file) -> Dataset: images (N,H,W[,C]) / (N,C,H,W) or rows (N,D)."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from neuroclass.data.dataset import Dataset, encode_labels, validate
from neuroclass.errors import NeuroclassError, counted


def images_to_uint8(x: np.ndarray, where: str) -> np.ndarray:
    """(N,H,W), (N,H,W,C) or (N,C,H,W) of uint8 or floats -> uint8 (N, C, H, W).

    Floats within [0, 1] are read as intensities and scaled by 255; other floats must be 0..255.
    """
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)  # channels-last -> channels-first
        if x.shape[1] == 4:
            x = x[:, :3]  # drop alpha
        if x.shape[1] not in (1, 3):
            raise NeuroclassError(f"{where}: images must have 1 or 3 channels; got shape {x.shape}")
    else:
        raise NeuroclassError(f"{where}: expected images (N,H,W), (N,H,W,C) or (N,C,H,W); got {x.shape}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind not in "iuf" or x.dtype == np.bool_:
        raise NeuroclassError(f"{where}: image values must be numbers; got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise NeuroclassError(f"{where}: images contain NaN or infinite values")
    if x.min() >= 0 and x.max() <= 1 and x.dtype.kind == "f":
        x = x * 255.0
    if x.min() < 0 or x.max() > 255:
        raise NeuroclassError(f"{where}: image values must lie in 0..255 (or 0..1 for floats); "
                              f"got {x.min():g}..{x.max():g}")
    return np.ascontiguousarray(np.round(x).astype(np.uint8))


def features_to_float(x: np.ndarray, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "iufb":
        raise NeuroclassError(f"{where}: features must be numbers; got dtype {x.dtype}")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise NeuroclassError(f"{where}: row {row}, column {col} is NaN or infinite; "
                              "fill or drop missing values first")
    return x


def label_codes(y: np.ndarray, classes: list[str], where: str) -> np.ndarray:
    """Labels (N,) -> int64 codes (N,) into ``classes``: integer labels (or whole floats) are
    indices 0..K-1 (the .npz convention: ``y`` codes, ``classes`` names); other labels are class
    names, compared as text. A label that is neither raises NeuroclassError naming it and the classes.

    >>> label_codes(np.array(["dog", "cat"]), ["cat", "dog"], "arrays")
    array([1, 0])
    """
    names = [str(c) for c in classes]
    if len(set(names)) != len(names):
        twice = sorted({c for c in names if names.count(c) > 1})
        raise NeuroclassError(f"{where}: classes lists {', '.join(map(repr, twice))} more than once")
    if y.dtype.kind == "f" and np.isfinite(y).all() and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    values, inverse = np.unique(y, return_inverse=True)
    if y.dtype.kind in "iu":
        codes, known = values, (values >= 0) & (values < len(names))
    else:
        index = {c: i for i, c in enumerate(names)}
        codes = np.array([index.get(str(v), -1) for v in values], dtype=np.int64)
        known = codes >= 0
    if not known.all():
        unknown = [v.item() if hasattr(v, "item") else v for v in values[~known]]
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        shown = ", ".join(repr(v) for v in unknown[:5]) + more
        one, last = len(unknown) == 1, len(names) - 1
        if y.dtype.kind in "iu":
            what = f"a class index (0..{last}) of" if one else f"class indices (0..{last}) of"
        else:
            what = "among"
        raise NeuroclassError(f"{where}: label{'' if one else 's'} {shown} {'is' if one else 'are'} not "
                              f"{what} the classes {names}; pass every class in classes= (or leave it "
                              "out to take the labels' own values)")
    return np.asarray(codes, dtype=np.int64)[inverse.reshape(-1)]


def from_arrays(x: np.ndarray, y: np.ndarray, name: str = "arrays", source: str = "",
                classes: list[str] | None = None, image: bool | None = None) -> Dataset:
    """Arrays -> Dataset. 2-D x is a table of features; 3-D or 4-D x is a stack of images.

    ``y`` (N,): labels. Without ``classes`` the sorted distinct labels become the classes; with
    ``classes``, integer labels are indices into it and other labels are its names
    (``label_codes``). Raises NeuroclassError for mismatched lengths, labels outside ``classes``,
    and inputs that are neither rows nor images.

    >>> from_arrays(np.zeros((4, 3)), np.array(["b", "a", "b", "a"]), classes=["a", "b"]).y.tolist()
    [1, 0, 1, 0]
    """
    where = source or name
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1:
        raise NeuroclassError(f"{where}: labels must be 1-D; got shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise NeuroclassError(f"{where}: {counted(x.shape[0], 'input')} but {counted(y.shape[0], 'label')}")
    if classes is None:
        codes, classes = encode_labels(y, where)
    else:
        codes = label_codes(y, classes, where)
    is_image = x.ndim in (3, 4) if image is None else image
    if is_image:
        tensor = torch.from_numpy(images_to_uint8(x, where))
        kind = "image"
    elif x.ndim == 2:
        tensor = torch.from_numpy(features_to_float(x, where))
        kind = "table"
    else:
        raise NeuroclassError(f"{where}: inputs must be 2-D rows or 3-/4-D images; got {x.shape}")
    ds = Dataset(tensor, torch.from_numpy(np.asarray(codes, dtype=np.int64)), list(classes),
                 name=name, kind=kind, source=source)
    validate(ds)
    return ds


def load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive or "y" not in archive:
                raise NeuroclassError(f"{path}: .npz must hold arrays named 'x' and 'y'; "
                                      f"found {sorted(archive.files)}")
            x, y = archive["x"], archive["y"]
            classes = [str(c) for c in archive["classes"]] if "classes" in archive else None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        reason = "it holds pickled objects, which are never loaded" if "pickle" in str(exc) \
            else " ".join(str(exc).split())
        raise NeuroclassError(f"{path}: cannot read .npz ({reason}); save plain arrays with "
                              "numpy.savez(path, x=..., y=...)") from None
    return from_arrays(x, y, name=path.stem, source=str(path), classes=classes)
