"""CSV / Parquet tables: a label column, numeric features, declared categorical columns one-hot."""
from __future__ import annotations

import csv
import difflib
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neuroclass.data.arrays import features_to_float
from neuroclass.data.dataset import Dataset, encode_labels
from neuroclass.data.id_columns import dropped_message, identifier_columns
from neuroclass.data.issues import DroppedColumn
from neuroclass.data.labels import check_label_column
from neuroclass.errors import NeuroclassError, counted

NAMED_ROWS = 4  # bad rows a message places; the rest are counted


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, column names cleaned (``clean_column_names``).
    Raises NeuroclassError naming the file when it cannot be read."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return clean_column_names(pd.read_csv(path), str(path))
        if suffix in (".parquet", ".pq"):
            return clean_column_names(pd.read_parquet(path), str(path))
    except ImportError as exc:
        raise NeuroclassError(f"{path}: reading Parquet needs pyarrow ({exc}); "
                              "pip install 'neuroclass[parquet]'") from None
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise NeuroclassError(f"{path}: cannot read table ({str(exc).splitlines()[0]})") from None
    raise NeuroclassError(f"{path}: unsupported table format '{suffix}'; use .csv or .parquet")


def visible_name(name: str) -> str:
    """A column name without invisible characters: format characters (zero-width space, byte order
    mark) removed, other whitespace (a stray carriage return, a non-breaking space, a tab) made a
    space, surrounding spaces stripped.

    >>> visible_name("answer\\r"), visible_name("\\ufeffid"), visible_name("max\\xa0temp ")
    ('answer', 'id', 'max temp')
    """
    kept = "".join(" " if ch.isspace() else ch for ch in name if unicodedata.category(ch) != "Cf")
    return kept.strip()


def shown_name(name: object) -> str:
    """A column name quoted for a message, with escapes (repr) when it holds characters one cannot
    see.

    >>> print(shown_name("answer"), shown_name("answer\\r"), shown_name("a\\xa0b"))
    'answer' 'answer\\r' 'a\\xa0b'
    """
    text = str(name)
    return repr(text) if any(not ch.isprintable() or (ch.isspace() and ch != " ") for ch in text) \
        else f"'{text}'"


def column_list(columns: list[str]) -> str:
    """Column names for a message: 'a, b, c', or each quoted and escaped when one has characters
    one cannot see ("'a', 'b\\r'")."""
    shown = [shown_name(c) for c in columns]
    hidden = any(q != f"'{c}'" for q, c in zip(shown, columns))
    return ", ".join(shown if hidden else columns)


def clean_column_names(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """``df`` with each text column name made ``visible_name``, and one warning naming the renamed
    ones; when two names would then be the same, the names are kept as they are."""
    renamed = {c: visible_name(c) for c in df.columns if isinstance(c, str) and visible_name(c) != c}
    if not renamed:
        return df
    names = [renamed.get(c, c) for c in df.columns]
    if len(set(names)) < len(names):
        return df
    said = ", ".join(f"{shown_name(old)} as '{new}'" for old, new in renamed.items())
    warnings.warn(f"{where}: read column name{'' if len(renamed) == 1 else 's'} {said} (invisible "
                  "characters removed; rename the columns in the file to silence this)", stacklevel=3)
    return df.rename(columns=renamed)


def row_places(where: str, rows: list[int]) -> list[str]:
    """How messages name 0-based data rows of the table file ``where``: "line 19 (data row 18)" in
    a CSV file (the line the row starts on, the header being line 1; blank lines and line breaks
    inside quotes counted as the csv module counts them), else "data row 18", counted from 1.

    >>> row_places("t.parquet", [0, 17])
    ['data row 1', 'data row 18']
    """
    lines = _csv_lines(Path(where), rows) if where.lower().endswith(".csv") else {}
    return [f"line {lines[r]} (data row {r + 1})" if r in lines else f"data row {r + 1}" for r in rows]


def _csv_lines(path: Path, rows: list[int]) -> dict[int, int]:
    """{data row: line it starts on} for ``rows`` of a CSV file; blank lines are no row (as pandas
    reads them); {} when the file cannot be read."""
    wanted, found, row, start = set(rows), {}, -2, 1  # row -2: before the header
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.reader(f)
            for record in reader:
                if record:
                    row += 1
                    if row in wanted:
                        found[row] = start
                        if len(found) == len(wanted):
                            break
                start = reader.line_num + 1
    except (OSError, csv.Error):
        return {}
    return found


def _bad_rows(where: str, bad: np.ndarray) -> tuple[str, str]:
    """(the first bad row's place, "; also at ..." naming the next few and counting the rest)."""
    places = row_places(where, [int(r) for r in bad[:NAMED_ROWS]])
    if len(bad) == 1:
        return places[0], ""
    rest = len(bad) - NAMED_ROWS
    return places[0], "; also at " + ", ".join(places[1:]) + (
        f" and {counted(rest, 'more row')}" if rest > 0 else "")


def _did_you_mean(name: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    return f" Did you mean {shown_name(close[0])}?" if close else ""


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
            raise NeuroclassError(f"{where}: column {shown_name(col)} is not numeric "
                                  f"({row_places(where, [row])[0]} holds {value!r}) "
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
        first, more = _bad_rows(where, bad)
        raise NeuroclassError(f"{where}: column {shown_name(col)} is {what} at {first}{more}; "
                              "fill or drop missing and infinite values first")


def load_table(path: Path, label_column: str | None, categorical: list[str],
               keep_columns: list[str] = ()) -> Dataset:
    """Read a table; validate the label column, categorical declarations and values. Columns that
    look like row identifiers (data/id_columns.py) are left out of the features with one warning
    and a record in ``ds.issues.dropped_columns``, unless named in ``keep_columns``. Raises
    NeuroclassError naming the file, the column and the fix."""
    if not path.is_file():
        raise NeuroclassError(f"{path}: file not found")
    df = read_table(path)
    if label_column is None:
        raise NeuroclassError(f"{path}: name the label column with --label-column "
                              f"(columns: {column_list([str(c) for c in df.columns])})")
    columns = [str(c) for c in df.columns]
    if label_column not in df.columns:
        raise NeuroclassError(f"{path}: no label column {shown_name(label_column)}."
                              + _did_you_mean(label_column, columns)
                              + f" Columns: {column_list(columns)}")
    for setting, names in (("categorical", categorical), ("data.keep_columns", keep_columns)):
        for col in names:
            if col not in df.columns or col == label_column:
                raise NeuroclassError(f"{path}: {setting} column {shown_name(col)} is not a feature "
                                      "column." + _did_you_mean(col, columns))
    labels = df[label_column]
    if labels.isna().any():
        first, more = _bad_rows(str(path), np.flatnonzero(labels.isna().to_numpy()))
        raise NeuroclassError(f"{path}: label column '{label_column}' is empty at {first}{more}; "
                              "every row needs a label")
    check_label_column(labels.to_numpy(), f"{path}: label column '{label_column}'")
    features, dropped = _features(df.drop(columns=[label_column]), path, label_column,
                                  [*keep_columns, *categorical])
    categorical = [c for c in categorical if c in features.columns]
    for col in features.columns:
        if col not in categorical and not _is_numeric(features[col]):
            row, value = _first_non_number(features[col])
            raise NeuroclassError(f"{path}: column {shown_name(col)} is not numeric "
                                  f"({row_places(str(path), [row])[0]} holds {value!r}); "
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
    ds = Dataset(torch.from_numpy(x), torch.from_numpy(codes), classes, name=path.stem,
                 kind="table", source=str(path), preprocessing=prep)
    ds.issues.dropped_columns.extend(dropped)
    return ds


def _features(features: pd.DataFrame, path: Path, label_column: str,
              keep: list[str]) -> tuple[pd.DataFrame, list[DroppedColumn]]:
    """(the feature columns without row identifiers, the dropped ones); warns once naming them."""
    if features.shape[1] == 0:
        raise NeuroclassError(f"{path}: no feature columns besides '{label_column}'")
    dropped = identifier_columns(features, keep)
    if len(dropped) == features.shape[1]:
        names = [c.name for c in dropped]
        raise NeuroclassError(f"{path}: every feature column looks like a row identifier (a different "
                              f"value in every row: {', '.join(names)}); add feature columns, or "
                              f"train on these with --set data.keep_columns=[{','.join(names)}]")
    if dropped:
        warnings.warn(dropped_message(str(path), dropped), stacklevel=4)
    gone = {c.name for c in dropped}
    return features[[c for c in features.columns if str(c) not in gone]], dropped
