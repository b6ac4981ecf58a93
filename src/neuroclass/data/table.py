"""CSV / Parquet tables: a label column, numeric features, declared categorical columns one-hot."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neuroclass.data.arrays import features_to_float
from neuroclass.data.dataset import Dataset, encode_labels
from neuroclass.data.labels import check_label_column
from neuroclass.errors import NeuroclassError
from neuroclass.registry import did_you_mean


def read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except ImportError as exc:
        raise NeuroclassError(f"{path}: reading Parquet needs pyarrow ({exc}); "
                              "pip install 'neuroclass[parquet]'") from None
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise NeuroclassError(f"{path}: cannot read table ({str(exc).splitlines()[0]})") from None
    raise NeuroclassError(f"{path}: unsupported table format '{suffix}'; use .csv or .parquet")


def encode_features(df: pd.DataFrame, prep: dict, where: str) -> np.ndarray:
    """Apply a recorded encoding: numeric columns as they are, categorical ones one-hot."""
    missing = [c for c in prep["columns"] if c not in df.columns]
    if missing:
        raise NeuroclassError(f"{where}: missing feature column(s) {missing}; "
                              f"the model expects {prep['columns']}")
    blocks = []
    for col in prep["columns"]:
        if col in prep["categorical"]:
            cats = prep["categorical"][col]
            values = df[col].astype(str).to_numpy()
            blocks.append((values[:, None] == np.asarray(cats)[None, :]).astype(np.float32))
            continue
        series = df[col]
        if not _is_numeric(series):
            row, value = _first_non_number(series)
            raise NeuroclassError(f"{where}: column '{col}' is not numeric (row {row} holds {value!r}) "
                                  "but the model was trained on numbers there; convert it to numbers")
        values = series.to_numpy()
        _check_finite(values, where, col)
        blocks.append(features_to_float(values[:, None], f"{where}: column '{col}'"))
    return np.concatenate(blocks, axis=1)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _first_non_number(series: pd.Series) -> tuple[int, object]:
    """(row, value) of the first value that does not read as a number (the first row if all do);
    long values are cut to 40 characters to keep the message on one short line."""
    numbers = pd.to_numeric(series, errors="coerce")
    bad = np.flatnonzero((numbers.isna() & series.notna()).to_numpy())
    row = int(bad[0]) if len(bad) else 0
    value = series.iloc[row]
    return row, value if len(str(value)) <= 40 else str(value)[:37] + "..."


def _check_finite(values: np.ndarray, where: str, col: str) -> None:
    """One line naming the column, the first bad row and what is wrong there."""
    if values.dtype.kind not in "fc":
        return
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        row = int(bad[0])
        what = "NaN (a missing value)" if np.isnan(values[row]) else f"infinite ({values[row]})"
        more = f" and {len(bad) - 1} more row(s)" if len(bad) > 1 else ""
        raise NeuroclassError(f"{where}: column '{col}' is {what} at row {row}{more}; "
                              "fill or drop missing and infinite values first")


def load_table(path: Path, label_column: str | None, categorical: list[str]) -> Dataset:
    """Read a table; validate the label column, categorical declarations and values."""
    if not path.is_file():
        raise NeuroclassError(f"{path}: file not found")
    df = read_table(path)
    if label_column is None:
        raise NeuroclassError(f"{path}: name the label column with --label-column "
                              f"(columns: {', '.join(map(str, df.columns))})")
    if label_column not in df.columns:
        raise NeuroclassError(f"{path}: no label column '{label_column}'."
                              + did_you_mean(label_column, [str(c) for c in df.columns])
                              + f" Columns: {', '.join(map(str, df.columns))}")
    for col in categorical:
        if col not in df.columns or col == label_column:
            raise NeuroclassError(f"{path}: categorical column '{col}' is not a feature column."
                                  + did_you_mean(col, [str(c) for c in df.columns]))
    labels = df[label_column]
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise NeuroclassError(f"{path}: label column '{label_column}' is empty at row {row}; "
                              "every row needs a label")
    check_label_column(labels.to_numpy(), f"{path}: label column '{label_column}'")
    features = df.drop(columns=[label_column])
    if features.shape[1] == 0:
        raise NeuroclassError(f"{path}: no feature columns besides '{label_column}'")
    for col in features.columns:
        if col not in categorical and not _is_numeric(features[col]):
            row, value = _first_non_number(features[col])
            raise NeuroclassError(f"{path}: column '{col}' is not numeric (row {row} holds {value!r}); "
                                  f"declare it categorical with --set data.categorical=[{col}] or "
                                  "convert it to numbers")
    prep = {"columns": [str(c) for c in features.columns],
            "categorical": {c: sorted(features[c].astype(str).unique().tolist()) for c in categorical}}
    x = encode_features(features, prep, str(path))
    names = []
    for col in prep["columns"]:
        names += [f"{col}={v}" for v in prep["categorical"][col]] if col in categorical else [col]
    prep["feature_names"] = names
    codes, classes = encode_labels(labels.to_numpy(), f"{path}: label column '{label_column}'")
    return Dataset(torch.from_numpy(x), torch.from_numpy(codes), classes, name=path.stem,
                   kind="table", source=str(path), preprocessing=prep)
