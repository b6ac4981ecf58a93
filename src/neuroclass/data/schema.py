"""The kind of each table column, inferred once from the file, and the raw encoding it gives.

A feature column is one of (``Kind``): numeric; boolean (true/false); categorical (text with few
distinct values, at most MAX_CATEGORIES and on average two rows each, or a column declared in
data.categorical); date (a datetime column, or ISO 8601 text such as 2024-03-01 or
2024-03-01T12:30); free text (more distinct text values than categories have); ID-like (a
different value in every row, as data/id_columns.py judges it); constant (one value in every row).
Numeric, boolean, categorical and date columns are features. Free text, ID-like and constant
columns are left out with a warning: free text and IDs are never one-hot encoded (each row would
become a category of its own), and a constant tells the classes nothing. With data.dates=drop
date columns are left out too; with data.dates=calendar (default) each becomes its calendar
features: year, month, day of year and weekday (0 = Monday).

``encode`` gives a table's raw encoded rows, the Dataset's x: float32 (N, D_raw), nothing fitted
yet. Numbers as they are with NaN where missing, booleans 0/1, a categorical column the index of
its category among the file's categories sorted (NaN where missing; -1 for a category the
training file did not hold, which the fitted one-hot encoding maps to none of the known ones), a
date its calendar features. The schema is recorded in model.json (``Schema.to_record``), so that
prediction encodes new rows the same way.
"""
from __future__ import annotations

import enum
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from neuroclass.data.id_columns import identifier_reason
from neuroclass.data.table_file import (bad_rows, column_list, first_non_number, row_places, shown_name,
                                        unseen_categories)
from neuroclass.errors import NeuroclassError, counted

# a text column with more distinct values than this is free text, not categories
MAX_CATEGORIES = 50
CALENDAR = ("year", "month", "day of year", "weekday")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")
TRUTH = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


class Kind(str, enum.Enum):
    """What a table column holds; the first four are features."""

    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    DATE = "date"
    TEXT = "text"
    ID = "id"
    CONSTANT = "constant"


FEATURE_KINDS = (Kind.NUMERIC, Kind.BOOLEAN, Kind.CATEGORICAL, Kind.DATE)


@dataclass(frozen=True)
class Column:
    """One column: its ``name`` in the file, its ``kind``, the sorted ``categories`` of a
    categorical column, whether the file misses some of its values (``missing``: it gets 0/1
    missing-value columns, whichever rows train), and for a column left out the ``reason``."""

    name: str
    kind: Kind
    categories: tuple[str, ...] = ()
    reason: str = ""
    missing: bool = False

    def encoded_names(self) -> list[str]:
        """The names of the raw matrix columns this column gives.

        >>> Column("signup", Kind.DATE).encoded_names()[:2]
        ['signup (year)', 'signup (month)']
        """
        return [f"{self.name} ({f})" for f in CALENDAR] if self.kind is Kind.DATE else [self.name]

    def to_record(self) -> dict:
        record = {"name": self.name, "kind": self.kind.value}
        if self.kind is Kind.CATEGORICAL:
            record["categories"] = list(self.categories)
        if self.kind is Kind.DATE and not self.reason:
            record["features"] = list(CALENDAR)
        if self.reason:
            record["reason"] = self.reason
        elif self.missing:
            record["missing"] = True
        return record

    @classmethod
    def from_record(cls, record: dict) -> "Column":
        return cls(record["name"], Kind(record["kind"]), tuple(record.get("categories", ())),
                   record.get("reason", ""), bool(record.get("missing", False)))


@dataclass(frozen=True)
class Schema:
    """The feature ``columns`` in table order, the ``dropped`` ones with reasons, and the settings
    the encoding follows (data.dates, data.missing).

    >>> s = Schema((Column("age", Kind.NUMERIC, missing=True),
    ...             Column("colour", Kind.CATEGORICAL, ("blue", "red"))), ())
    >>> s.encoded_names(), s.positions()
    (['age', 'colour'], {'numbers': [0], 'missing numbers': [0], 'categories': [1], 'missing categories': []})
    """

    columns: tuple[Column, ...]
    dropped: tuple[Column, ...]
    dates: str = "calendar"
    missing: str = "impute"

    def encoded_names(self) -> list[str]:
        return [name for c in self.columns for name in c.encoded_names()]

    def positions(self) -> dict[str, list[int]]:
        """Positions in the raw matrix of: "numbers" (numeric, boolean and calendar columns),
        "categories" (one per categorical column), and "missing numbers" / "missing categories":
        the first position of each column the file misses values of (one 0/1 column each)."""
        out = {"numbers": [], "missing numbers": [], "categories": [], "missing categories": []}
        at = 0
        for c in self.columns:
            width = len(c.encoded_names())
            kind = "categories" if c.kind is Kind.CATEGORICAL else "numbers"
            out[kind] += range(at, at + width)
            if c.missing:
                out[f"missing {kind}"].append(at)
            at += width
        return out

    def column_at(self) -> list[str]:
        """The column name of each raw matrix position."""
        return [c.name for c in self.columns for _ in c.encoded_names()]

    def categorical(self) -> list[Column]:
        return [c for c in self.columns if c.kind is Kind.CATEGORICAL]

    def to_record(self) -> dict:
        """The JSON record kept in model.json under preprocessing["table"]."""
        return {"columns": [c.to_record() for c in self.columns],
                "dropped": [c.to_record() for c in self.dropped],
                "encoded_names": self.encoded_names(), "dates": self.dates, "missing": self.missing}

    @classmethod
    def from_record(cls, record: dict, where: str) -> "Schema":
        """The inverse of ``to_record``; NeuroclassError naming ``where`` for a damaged record."""
        try:
            return cls(tuple(Column.from_record(c) for c in record["columns"]),
                       tuple(Column.from_record(c) for c in record.get("dropped", ())),
                       record.get("dates", "calendar"), record.get("missing", "impute"))
        except (KeyError, TypeError, ValueError) as exc:
            raise NeuroclassError(f"{where}: the table record is damaged ({exc!r}); train the run again") from None


# ----------------------------------------------------------------------------- inference

def infer_schema(features: pd.DataFrame, where: str, declared: list[str] = (), keep: list[str] = (),
                 dates: str = "calendar", missing: str = "impute") -> Schema:
    """The kind of every column of ``features`` (a table without its label column, as read).
    ``declared``: data.categorical (categorical whatever they hold); ``keep``: data.keep_columns
    (never ID-like; kept text becomes categorical); ``dates``: "calendar" or "drop".
    Raises NeuroclassError naming the column and the fix for a column with every value missing,
    and for text among numbers (naming the first such row)."""
    columns, dropped = [], []
    for name in features.columns:
        column = infer_column(features[name], where, str(name) in declared, str(name) in keep)
        if column.kind is Kind.DATE and dates == "drop":
            column = Column(column.name, Kind.DATE, reason="holds dates, left out with data.dates=drop")
        (columns if column.kind in FEATURE_KINDS and not column.reason else dropped).append(column)
    return Schema(tuple(columns), tuple(dropped), dates, missing)


def infer_column(series: pd.Series, where: str, declared: bool = False, kept: bool = False) -> Column:
    """The ``Column`` that ``series`` (one column as read) is; see the module's docstring.

    >>> infer_column(pd.Series(["2024-03-01", "2024-03-09", None], name="d"), "t.csv").kind.value
    'date'
    >>> infer_column(pd.Series(["red", "blue"] * 10, name="c"), "t.csv").categories
    ('blue', 'red')
    """
    name, rows = str(series.name), len(series)
    present = series.dropna()
    if present.empty:
        raise NeuroclassError(f"{where}: column {shown_name(name)} is empty (all {counted(rows, 'row')} "
                              "missing); remove the column from the file, or fill it in")
    if series.nunique(dropna=False) == 1:
        return Column(name, Kind.CONSTANT, reason=f"holds the same value ({_shown(present.iloc[0])}) in every row")
    column = _feature_kind(series, present, where, declared, kept)
    return Column(name, column.kind, column.categories, column.reason,
                  missing=not column.reason and bool(series.isna().any()))


def _feature_kind(series: pd.Series, present: pd.Series, where: str, declared: bool, kept: bool) -> Column:
    """``infer_column`` for a column with two values or more."""
    name, rows = str(series.name), len(series)
    if declared:
        return Column(name, Kind.CATEGORICAL, _categories(series))
    if _is_boolean(series, present):
        return Column(name, Kind.BOOLEAN)
    if pd.api.types.is_datetime64_any_dtype(series):
        return Column(name, Kind.DATE)
    reason = None if kept else identifier_reason(series)
    if pd.api.types.is_numeric_dtype(series):
        return Column(name, Kind.ID, reason=reason) if reason else Column(name, Kind.NUMERIC)
    text = present.astype(str)
    _refuse_text_among_numbers(series, text, where)
    if text.str.fullmatch(ISO_DATE.pattern).all() and parse_dates(present).notna().all():
        return Column(name, Kind.DATE)
    if reason:
        return Column(name, Kind.ID, reason=reason)
    distinct = text.nunique()
    if kept or (distinct <= MAX_CATEGORIES and distinct <= len(present) / 2):
        return Column(name, Kind.CATEGORICAL, _categories(series))
    return Column(name, Kind.TEXT, reason=f"holds free text ({distinct:,} different values in {rows:,} rows)")


def _shown(value: object) -> str:
    text = repr(value if isinstance(value, str) else value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_boolean(series: pd.Series, present: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series):
        return True
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
        return False
    return set(present.map(lambda v: str(v).strip().lower())) <= {"true", "false"}


def _refuse_text_among_numbers(series: pd.Series, text: pd.Series, where: str) -> None:
    """NeuroclassError naming the first cell that is not a number, when most cells are numbers."""
    if pd.to_numeric(text, errors="coerce").notna().mean() <= 0.5:
        return
    name = str(series.name)
    row, value = first_non_number(series)
    raise NeuroclassError(f"{where}: column {shown_name(name)} is not numeric: {row_places(where, [row])[0]} "
                          f"holds {value!r} among numbers; if it marks a missing value, leave the cell "
                          "empty (missing values follow data.missing), else correct it, or declare the "
                          f"column categorical with --set data.categorical=[{name}]")


def parse_dates(values: pd.Series) -> pd.Series:
    """``values`` (datetimes, or ISO 8601 text) as datetimes; NaT where missing or not a date.
    Text with mixed time-zone offsets is read in UTC."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.map(lambda v: v if pd.isna(v) else str(v))
    try:
        return pd.to_datetime(text, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):  # mixed offsets
        return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)


def category_text(series: pd.Series) -> pd.Series:
    """Each value as the text of its category (missing where missing); a whole float is written as
    an integer, so that 3.0 in a column with gaps and 3 in one without name one category.

    >>> category_text(pd.Series([3.0, None, 2.5])).tolist()
    ['3', nan, '2.5']
    """
    def text(value: object) -> str | None:
        if pd.isna(value):
            return None
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return series.astype(object).map(text)


def _categories(series: pd.Series) -> tuple[str, ...]:
    return tuple(sorted(set(category_text(series).dropna())))


# ----------------------------------------------------------------------------- encoding

def encode(df: pd.DataFrame, schema: Schema, where: str) -> np.ndarray:
    """Raw encoded rows of ``df`` (a table as read, with at least the schema's columns): float32
    (N, D_raw) in ``schema.encoded_names()`` order; see the module's docstring. A category not in
    the schema is encoded -1, with one warning per column counting its rows.

    Raises NeuroclassError naming the column (and the first bad row) for a missing column, text in
    a numeric, boolean or date column, an infinite number, and, with ``schema.missing`` "error", a
    missing value (counting the rows)."""
    absent = [c.name for c in schema.columns if c.name not in df.columns]
    if absent:
        raise NeuroclassError(f"{where}: missing feature column(s) {column_list(absent)}; the model "
                              f"expects {column_list([c.name for c in schema.columns])}")
    encoders = {Kind.NUMERIC: _numbers, Kind.BOOLEAN: _booleans, Kind.CATEGORICAL: _codes, Kind.DATE: _calendar}
    blocks = [encoders[c.kind](df[c.name], c, where) for c in schema.columns]
    if schema.missing == "error":
        _refuse_missing(blocks, schema, where)
    if not blocks:
        return np.zeros((len(df), 0), dtype=np.float32)
    return np.concatenate(blocks, axis=1).astype(np.float32)


def _numbers(series: pd.Series, column: Column, where: str) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        numbers = pd.to_numeric(series, errors="coerce")
        if (numbers.isna() & series.notna()).any():
            row, value = first_non_number(series)
            raise NeuroclassError(f"{where}: column {shown_name(column.name)} is not numeric "
                                  f"({row_places(where, [row])[0]} holds {value!r}) but the model was "
                                  "trained on numbers there; leave the cell empty if the value is "
                                  "missing, or convert it to numbers")
        series = numbers
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.flatnonzero(np.isinf(values))
    if len(infinite):
        first, more = bad_rows(where, infinite)
        raise NeuroclassError(f"{where}: column {shown_name(column.name)} is infinite "
                              f"({values[infinite[0]]}) at {first}{more}; fill or drop infinite values "
                              "first (an empty cell is read as missing)")
    return values[:, None]


def _booleans(series: pd.Series, column: Column, where: str) -> np.ndarray:
    text = series.map(lambda v: v if pd.isna(v) else str(v).strip().lower())
    values = text.map(TRUTH)
    bad = np.flatnonzero((values.isna() & series.notna()).to_numpy())
    if len(bad):
        raise NeuroclassError(f"{where}: column {shown_name(column.name)} holds true/false values but "
                              f"{row_places(where, [int(bad[0])])[0]} holds {series.iloc[bad[0]]!r}; "
                              "write true or false there, or leave the cell empty if it is missing")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)[:, None]


def _codes(series: pd.Series, column: Column, where: str) -> np.ndarray:
    text = category_text(series)
    index = {c: float(i) for i, c in enumerate(column.categories)}
    codes = text.map(lambda v: np.nan if pd.isna(v) else index.get(v, -1.0)).to_numpy(dtype=np.float64)
    unseen = np.flatnonzero(codes == -1)
    if len(unseen):
        warnings.warn(unseen_categories(where, column.name, text, unseen), stacklevel=4)
    return codes[:, None]


def _calendar(series: pd.Series, column: Column, where: str) -> np.ndarray:
    dates = parse_dates(series)
    bad = np.flatnonzero((dates.isna() & series.notna()).to_numpy())
    if len(bad):
        raise NeuroclassError(f"{where}: column {shown_name(column.name)} holds dates but "
                              f"{row_places(where, [int(bad[0])])[0]} holds {series.iloc[bad[0]]!r}; "
                              "write the date as YYYY-MM-DD there, or leave the cell empty if it is missing")
    parts = (dates.dt.year, dates.dt.month, dates.dt.day_of_year, dates.dt.day_of_week)
    return np.stack([p.to_numpy(dtype=np.float64, na_value=np.nan) for p in parts], axis=1)


def _refuse_missing(blocks: list[np.ndarray], schema: Schema, where: str) -> None:
    """data.missing=error: NeuroclassError naming the first column with a missing value."""
    for column, block in zip(schema.columns, blocks):
        rows = np.flatnonzero(np.isnan(block).any(axis=1))
        if len(rows):
            raise NeuroclassError(f"{where}: column {shown_name(column.name)} has a missing value in "
                                  f"{counted(len(rows), 'row')} (first at {row_places(where, [int(rows[0])])[0]}); "
                                  "fill them in, or train with --set data.missing=impute to have missing "
                                  "values filled from the training split")
