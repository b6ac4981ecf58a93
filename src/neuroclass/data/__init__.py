"""Data: every source -> a validated in-memory Dataset; splits; batches; augmentation."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroclass.config import DataConfig
from neuroclass.data.arrays import from_arrays, load_npz
from neuroclass.data.builtin import BUILTIN, is_builtin, load_builtin
from neuroclass.data.dataset import Dataset, validate
from neuroclass.data.folder import load_image_folder
from neuroclass.data.idx import is_idx_folder, load_idx_folder
from neuroclass.data.labels import merge_near_duplicate_labels
from neuroclass.data.paths import missing_data
from neuroclass.data.pixels import DecodeSettings
from neuroclass.data.split import Splits, split
from neuroclass.data.table import load_recorded_table, load_table
from neuroclass.errors import NeuroclassError

__all__ = ["BUILTIN", "Dataset", "Splits", "from_arrays", "load", "split"]


def _limit(ds: Dataset, limit: int) -> Dataset:
    """Keep at most ``limit`` examples of each shipped split (or of the whole set)."""
    parts = ds.parts or {"all": np.arange(len(ds))}
    keep, new_parts, offset = [], {}, 0
    for name, index in parts.items():
        chosen = index[:limit]
        keep.append(chosen)
        new_parts[name] = np.arange(offset, offset + len(chosen))
        offset += len(chosen)
    out = ds.subset(np.concatenate(keep))
    out.parts = {} if "all" in new_parts else new_parts
    return out


def load(cfg: DataConfig, decode: DecodeSettings | None = None, table_record: dict | None = None) -> Dataset:
    """Load ``cfg.source``: a built-in name, a folder (IDX files or class sub-folders), a CSV/Parquet
    table or an .npz file. Image files are decoded with ``decode`` when given (a trained model's
    record), else with the settings of ``cfg``. A table is read with ``table_record`` when given
    (the preprocessing record of a run trained before per-column schemas: read as it read it).

    >>> ds = load(DataConfig(source="blocks:n=64"))
    >>> ds.input_shape
    (3, 16, 16)
    """
    spec = cfg.source
    if is_builtin(spec):
        ds = load_builtin(spec)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise missing_data(spec)
        if path.is_dir():
            ds = load_idx_folder(path, path.name) if is_idx_folder(path) else \
                load_image_folder(path, cfg.channels, cfg.image_size, cfg.max_bad_fraction,
                                  cfg.cache, decode or DecodeSettings.from_config(cfg))
        elif path.suffix.lower() in (".csv", ".parquet", ".pq"):
            ds = load_table(path, cfg.label_column, list(cfg.categorical), list(cfg.keep_columns),
                            cfg.dates, cfg.missing) if table_record is None else \
                load_recorded_table(path, cfg.label_column, table_record)
        elif path.suffix.lower() == ".npz":
            ds = load_npz(path)
        else:
            raise NeuroclassError(f"DATA '{spec}': unsupported file type '{path.suffix}'; use a folder, "
                                  ".csv, .parquet or .npz")
    if cfg.limit is not None:
        ds = _limit(ds, cfg.limit)
    ds = merge_near_duplicate_labels(ds, cfg.labels)
    validate(ds)
    return ds
