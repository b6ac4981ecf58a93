"""The in-memory dataset every source produces, validated once."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from neuroclass.data.issues import DataIssues
from neuroclass.errors import NeuroclassError, counted


@dataclass
class Dataset:
    """Images as uint8 (N, C, H, W) or table rows as float32 (N, D), with int64 labels. A table read
    from a file holds its raw encoded rows (data/schema.py: NaN where a value is missing), which the
    preprocessing fitted on the training split turns into model inputs (data/table_prep.py).

    ``parts`` holds predefined splits shipped with the data (e.g. the official test set):
    a dict from "train" / "val" / "test" to index arrays into x/y.
    ``preprocessing`` records what was done to raw inputs (table encodings, image resize) so that
    prediction on new raw inputs repeats it exactly.

    >>> ds = Dataset(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]),
    ...              ["a", "b"], name="toy", kind="image")
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    name: str
    kind: str  # "image" | "table"
    source: str = ""
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    preprocessing: dict = field(default_factory=dict)
    skipped: int = 0  # unreadable files skipped at load
    issues: DataIssues = field(default_factory=DataIssues)  # what loading and splitting found

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape[1:])

    def subset(self, index: np.ndarray) -> "Dataset":
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return replace(self, x=self.x[idx], y=self.y[idx], parts={})

    def content_hash(self, chunk_bytes: int = 1 << 26) -> str:
        """SHA-256 of inputs, labels and class names: the identity of the data a run used. The
        inputs are hashed about ``chunk_bytes`` at a time (rows in order: the same digest as all
        at once), so that a memory-mapped cache is never copied into memory whole."""
        h = hashlib.sha256()
        row_bytes = max(1, self.x[:1].numel() * self.x.element_size())
        rows = max(1, chunk_bytes // row_bytes)
        for start in range(0, len(self.x), rows):
            h.update(self.x[start:start + rows].contiguous().numpy().tobytes())
        h.update(self.y.numpy().astype("<i8").tobytes())
        h.update("\n".join(self.classes).encode())
        return h.hexdigest()


def validate(ds: Dataset) -> None:
    """Shapes, dtypes, label range, finite features (NaN allowed in a table's raw rows, whose
    preprocessing record has "table"), at least two classes."""
    where = ds.source or ds.name
    if ds.x.shape[0] != ds.y.shape[0]:
        raise NeuroclassError(f"{where}: {counted(ds.x.shape[0], 'input')} but "
                              f"{counted(ds.y.shape[0], 'label')}; "
                              "each input needs exactly one label")
    if len(ds) == 0:
        raise NeuroclassError(f"{where}: no examples found; check the path and its contents")
    if ds.kind == "image":
        if ds.x.dtype != torch.uint8 or ds.x.ndim != 4:
            raise NeuroclassError(f"{where}: images must be uint8 (N, C, H, W); "
                                  f"got {ds.x.dtype} {tuple(ds.x.shape)}")
    elif ds.kind == "table":
        if ds.x.ndim != 2:
            raise NeuroclassError(f"{where}: table features must be 2-D (N, D); "
                                  f"got shape {tuple(ds.x.shape)}")
        # a table read from a file holds NaN where a value is missing (data/schema.py): filled
        # by the preprocessing fitted on its training split (data/table_prep.py)
        bad = torch.isinf(ds.x) if "table" in ds.preprocessing else ~torch.isfinite(ds.x)
        if bad.any():
            row = int(bad.any(dim=1).nonzero()[0, 0])
            raise NeuroclassError(f"{where}: row {row} has NaN or infinite features; "
                                  "fill or drop missing values first")
    else:
        raise NeuroclassError(f"{where}: unknown dataset kind '{ds.kind}'")
    if ds.y.dtype != torch.int64:
        ds.y = ds.y.to(torch.int64)
    lo, hi = int(ds.y.min()), int(ds.y.max())
    if lo < 0 or hi >= len(ds.classes):
        raise NeuroclassError(f"{where}: labels range {lo}..{hi} but there are "
                              f"{len(ds.classes)} class names; labels must be 0..{len(ds.classes) - 1}")
    present = int(torch.unique(ds.y).numel())
    if present < 2:
        raise NeuroclassError(f"{where}: only one class ('{ds.classes[lo]}') is present; "
                              "a classifier needs at least two; add examples of another class")


def encode_labels(raw: np.ndarray, where: str) -> tuple[np.ndarray, list[str]]:
    """Map arbitrary label values to 0..K-1 with sorted class names."""
    raw = np.asarray(raw)
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all():
            raise NeuroclassError(f"{where}: labels contain NaN or infinity; every row needs a label")
        if np.all(raw == np.round(raw)):
            raw = raw.astype(np.int64)
    values, codes = np.unique(raw, return_inverse=True)
    return codes.astype(np.int64), [str(v) for v in values]
