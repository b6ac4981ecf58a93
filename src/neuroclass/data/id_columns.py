"""Table columns that identify rows rather than describe them, left out of the features.

A row number or a record key holds a different value in every row. A model learns nothing from it
that carries over to new rows, and when the file is ordered (by class, by date) it learns the order
instead: a table sorted by class with an ``id`` column 1..N is "classified" from the id alone, and
predicting then needs an ``id`` column. Such a column is one whose every row differs and that is
text (names, keys), or whole numbers that run consecutively from 0 or 1 in a table of at least
ROW_NUMBER_ROWS rows (a row number; a year 2001..2020 or a dose 1..10 in a small table is a
feature), or whole numbers under an index-like name (``id``, ``index``, ``row``, ``*_id``, pandas' ``Unnamed: 0``). Measured numbers
with a different value in every row (a float feature almost always has) are features and are kept.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from neuroclass.data.issues import DroppedColumn

# below this many rows a column differs in every row by chance as easily as by design
MIN_ROWS = 10
# a plain-named column of consecutive whole numbers is read as a row number only from this many rows:
# in a small table (one row per level of a dose, say) such a column is as likely a feature
ROW_NUMBER_ROWS = 30
INDEX_NAME = re.compile(r"(id|index|row|unnamed: ?0|.*_id)", re.IGNORECASE)


def identifier_reason(series: pd.Series) -> str | None:
    """Why ``series`` (one table column, as read) looks like a row identifier, or None when it does
    not: fewer than MIN_ROWS rows, a repeated or missing value, text that is mostly numbers (a
    numeric column with a typo), or numbers that are not whole and consecutive under a plain name.

    >>> identifier_reason(pd.Series(range(1, 41), name="n"))
    'holds a different value in every row, consecutive whole numbers like a row number'
    >>> identifier_reason(pd.Series(range(2001, 2041), name="year")) is None
    True
    >>> identifier_reason(pd.Series(np.linspace(0, 1, 20), name="x")) is None
    True
    """
    rows = len(series)
    if rows < MIN_ROWS or series.isna().any() or series.nunique() != rows:
        return None
    kind = series.dtype.kind
    if kind in "OSU" or isinstance(series.dtype, (pd.CategoricalDtype, pd.StringDtype)):
        if pd.to_numeric(series.astype(str), errors="coerce").notna().mean() > 0.5:
            return None  # numbers with a typo or two: the loader names the cell that is not one
        return "holds a different text value in every row, like a row identifier"
    if kind not in "iu":
        return None
    ordered = np.sort(series.to_numpy())
    if rows >= ROW_NUMBER_ROWS and ordered[0] in (0, 1) and np.all(np.diff(ordered) == 1):
        return "holds a different value in every row, consecutive whole numbers like a row number"
    if INDEX_NAME.fullmatch(str(series.name).strip()):
        return "holds a different whole number in every row under an index-like name, like a row identifier"
    return None


def identifier_columns(features: pd.DataFrame, keep: list[str]) -> list[DroppedColumn]:
    """The columns of ``features`` that look like row identifiers (``identifier_reason``), in
    table order, except those named in ``keep`` (data.keep_columns, and the columns declared
    categorical: a declaration wins).

    >>> df = pd.DataFrame({"id": range(20), "x": np.linspace(0, 1, 20)})
    >>> [c.name for c in identifier_columns(df, [])], identifier_columns(df, ["id"])
    (['id'], [])
    """
    found = []
    for col in features.columns:
        reason = None if str(col) in keep else identifier_reason(features[col])
        if reason:
            found.append(DroppedColumn(str(col), reason))
    return found


def dropped_message(where: str, dropped: list[DroppedColumn]) -> str:
    """One warning line naming the dropped columns, why, and how to keep them.

    >>> print(dropped_message("t.csv", [DroppedColumn("id", "holds a different value in every row")]))
    t.csv: column 'id' holds a different value in every row: not used as a feature; keep it with --set data.keep_columns=id
    """
    if len(dropped) == 1:
        c = dropped[0]
        return (f"{where}: column '{c.name}' {c.reason}: not used as a feature; keep it with "
                f"--set data.keep_columns={c.name}")
    said = "; ".join(f"'{c.name}' {c.reason}" for c in dropped)
    names = ",".join(c.name for c in dropped)
    return (f"{where}: columns not used as features: {said}; keep them with "
            f"--set data.keep_columns=[{names}]")
