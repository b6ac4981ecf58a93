"""A CSV or Parquet table file: reading it, its column names, where its rows are in the file (for
messages), and the encoding that runs trained before per-column schemas recorded (numeric columns
as they are, declared categorical ones one-hot), with which such runs still predict."""
from __future__ import annotations

import csv
import difflib
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from neuroclass.data.arrays import features_to_float
from neuroclass.errors import NeuroclassError, counted

NAMED_ROWS = 4  # bad rows a message places; the rest are counted
NAMED_VALUES, NAMED_ROWS_PER_VALUE = 3, 2  # unseen categories a warning names, and the rows of each it places


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


def bad_rows(where: str, bad: np.ndarray) -> tuple[str, str]:
    """(the first bad row's place, "; also at ..." naming the next few and counting the rest), for
    0-based data rows ``bad`` (int, ascending) of the table file ``where`` (``row_places``).

    >>> bad_rows("t.parquet", np.array([3, 5]))
    ('data row 4', '; also at data row 6')
    """
    places = row_places(where, [int(r) for r in bad[:NAMED_ROWS]])
    if len(bad) == 1:
        return places[0], ""
    rest = len(bad) - NAMED_ROWS
    return places[0], "; also at " + ", ".join(places[1:]) + (
        f" and {counted(rest, 'more row')}" if rest > 0 else "")


def unseen_categories(where: str, column: str, values: pd.Series, unseen: np.ndarray) -> str:
    """The warning for the 0-based data rows ``unseen`` (int, ascending) of the table file
    ``where`` whose ``values`` (the column's text) are categories column ``column`` did not hold in
    training: each such value (the first NAMED_VALUES, in the order the file has them) with the
    first rows it is in (``row_places``).

    >>> values = pd.Series(["Biscoe", "Atlantis", "Dream", "Atlantis", "Mu"])
    >>> unseen_categories("t.parquet", "island", values, np.array([1, 3, 4]))
    "t.parquet: column 'island' holds 2 categories not seen in training: 'Atlantis' at data row 2 and data row 4; 'Mu' at data row 5; encoded as none of the known ones"
    """
    found = values.iloc[unseen].to_numpy()
    distinct = list(dict.fromkeys(found.tolist()))
    rows = {value: unseen[found == value][:NAMED_ROWS_PER_VALUE] for value in distinct[:NAMED_VALUES]}
    placed = sorted(int(i) for at in rows.values() for i in at)
    places = dict(zip(placed, row_places(where, placed)))  # the file is read once for them all
    said = []
    for value, at in rows.items():
        shown = [places[int(i)] for i in at]
        rest = int((found == value).sum()) - len(at)
        if rest:
            shown.append(counted(rest, "more row"))
        listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
        text = str(value) if len(str(value)) <= 40 else str(value)[:37] + "..."
        said.append(f"{text!r} at {listed}")
    more = len(distinct) - len(rows)
    what = "a category" if len(distinct) == 1 else f"{len(distinct):,} categories"
    return (f"{where}: column {shown_name(column)} holds {what} not seen in training: {'; '.join(said)}"
            + (f"; and {counted(more, 'more category', 'more categories')}" if more else "")
            + "; encoded as none of the known ones")


def did_you_mean_column(name: str, columns: list[str]) -> str:
    """" Did you mean 'x'?" for the column name closest to ``name``, or "" when none is close."""
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    return f" Did you mean {shown_name(close[0])}?" if close else ""


def encode_features(df: pd.DataFrame, prep: dict, where: str) -> np.ndarray:
    """Apply the encoding recorded by a run trained before per-column schemas (model.json format
    version 2 or older: ``prep`` holds "columns" and "categorical"): numeric columns as they are,
    categorical ones one-hot. float32 (N, D); NeuroclassError naming the column (and row) for a
    missing column, text among numbers, NaN or infinity."""
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
        if not is_numeric(series):
            row, value = first_non_number(series)
            raise NeuroclassError(f"{where}: column {shown_name(col)} is not numeric "
                                  f"({row_places(where, [row])[0]} holds {value!r}) "
                                  "but the model was trained on numbers there; convert it to numbers")
        values = series.to_numpy()
        _check_finite(values, where, col)
        blocks.append(features_to_float(values[:, None], f"{where}: column '{col}'"))
    return np.concatenate(blocks, axis=1)


def is_numeric(series: pd.Series) -> bool:
    """Whether a column is read as numbers (or booleans) as it stands."""
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def first_non_number(series: pd.Series) -> tuple[int, object]:
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
        first, more = bad_rows(where, bad)
        raise NeuroclassError(f"{where}: column {shown_name(col)} is {what} at {first}{more}; "
                              "fill or drop missing and infinite values first")
