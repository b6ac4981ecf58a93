"""CSV / Parquet tables as a Dataset: a label column, and the feature columns encoded by their
inferred kind (data/schema.py) as raw rows, float32 (N, D_raw) with NaN where a value is missing.

Nothing is fitted here: imputation, scaling, one-hot encoding and feature selection are fitted on
the training split once the table is split (data/table_prep.py, called by pipeline.prepare).
``load_recorded_table`` reads a table the way a run trained before per-column schemas read it.
What the run says about the schema: ``dropped_warnings`` (columns left out) and ``schema_lines``
(the kinds, logged as the run's first lines by data/table_prep.py).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neuroclass.data.dataset import Dataset, encode_labels
from neuroclass.data.id_columns import dropped_message
from neuroclass.data.issues import DroppedColumn
from neuroclass.data.labels import check_label_column
from neuroclass.data.paths import missing_data
from neuroclass.data.schema import CALENDAR, FEATURE_KINDS, Column, Kind, Schema, encode, infer_schema
from neuroclass.data.table_file import (bad_rows, column_list, did_you_mean_column, encode_features,
                                        read_table, shown_name)
from neuroclass.errors import NeuroclassError, counted

NAMED = 8  # column names a log line names per kind; the rest are counted


def load_table(path: Path, label_column: str | None, categorical: list[str],
               keep_columns: list[str] = (), dates: str = "calendar", missing: str = "impute") -> Dataset:
    """Read a table; validate the label column and the column settings; infer each feature
    column's kind (data/schema.py) and encode the rows raw. Columns left out (ID-like, free text,
    constant; dates with ``dates`` "drop") are named in warnings and recorded in
    ``ds.issues.dropped_columns``; the schema is in ``ds.preprocessing["table"]``.

    ``categorical``: data.categorical; ``keep_columns``: data.keep_columns; ``dates``: data.dates
    ("calendar" | "drop"); ``missing``: data.missing ("impute" | "error": a missing value is refused).
    Raises NeuroclassError naming the file, the column (and row) and the fix.

    Example::

        ds = load_table(Path("penguins.csv"), "species", [])
        ds.x.shape, ds.preprocessing["table"]["columns"][0]
        # -> (torch.Size([344, 7]), {'name': 'island', 'kind': 'categorical', 'categories': [...]})
    """
    df, labels = _read_labelled(path, label_column, {"categorical": categorical,
                                                     "data.keep_columns": keep_columns})
    features = df.drop(columns=[label_column])
    if features.shape[1] == 0:
        raise NeuroclassError(f"{path}: no feature columns besides '{label_column}'")
    schema = infer_schema(features, str(path), list(categorical), list(keep_columns), dates, missing)
    if not schema.columns:
        raise NeuroclassError(_nothing_left(path, schema.dropped))
    for line in dropped_warnings(str(path), schema.dropped):
        warnings.warn(line, stacklevel=3)
    x = encode(features, schema, str(path))
    codes, classes = encode_labels(labels.to_numpy(), f"{path}: label column '{label_column}'")
    prep = {"columns": [c.name for c in schema.columns], "feature_names": schema.encoded_names(),
            "table": schema.to_record()}
    ds = Dataset(torch.from_numpy(x), torch.from_numpy(codes), classes, name=path.stem,
                 kind="table", source=str(path), preprocessing=prep)
    ds.issues.dropped_columns.extend(DroppedColumn(c.name, c.reason) for c in schema.dropped)
    return ds


def _read_labelled(path: Path, label_column: str | None,
                   settings: dict[str, list[str]]) -> tuple[pd.DataFrame, pd.Series]:
    """(the table, its label column), checked: the file exists, the label column is named and
    holds classes (at least two), the columns named in ``settings`` are feature columns."""
    if not path.is_file():
        raise missing_data(path)
    df = read_table(path)
    columns = [str(c) for c in df.columns]
    if label_column is None:
        raise NeuroclassError(f"{path}: name the label column with --label-column "
                              f"(columns: {column_list(columns)})")
    if label_column not in df.columns:
        raise NeuroclassError(f"{path}: no label column {shown_name(label_column)}."
                              + did_you_mean_column(label_column, columns)
                              + f" Columns: {column_list(columns)}")
    for setting, names in settings.items():
        for col in names:
            if col not in df.columns or col == label_column:
                raise NeuroclassError(f"{path}: {setting} column {shown_name(col)} is not a feature "
                                      "column." + did_you_mean_column(col, columns))
    labels = df[label_column]
    if labels.isna().any():
        first, more = bad_rows(str(path), np.flatnonzero(labels.isna().to_numpy()))
        raise NeuroclassError(f"{path}: label column '{label_column}' is empty at {first}{more}; "
                              "every row needs a label")
    if labels.nunique() == 1:
        raise NeuroclassError(f"{path}: label column '{label_column}' holds only one class "
                              f"({str(labels.iloc[0])!r}) in all {counted(len(labels), 'row')}; a classifier "
                              "needs at least two: add examples of another class, or pick the column "
                              "that holds the classes with --label-column")
    check_label_column(labels.to_numpy(), f"{path}: label column '{label_column}'")
    return df, labels


def _nothing_left(path: Path, dropped: tuple) -> str:
    """The message for a table none of whose columns is a feature, saying how to keep them."""
    names = [c.name for c in dropped]
    if all(c.kind is Kind.ID for c in dropped):
        return (f"{path}: every feature column looks like a row identifier (a different value in "
                f"every row: {', '.join(names)}); add feature columns, or train on these with "
                f"--set data.keep_columns=[{','.join(names)}]")
    said = "; ".join(f"{shown_name(c.name)} {c.reason}" for c in dropped)
    return (f"{path}: no column is a feature ({said}); add feature columns, or declare text columns "
            f"with --set data.categorical=[...] and identifiers with --set data.keep_columns=[...]")


def older_table_record(meta: dict) -> dict | None:
    """The preprocessing record of a table run trained before per-column schemas (model.json's
    ``meta``: kind "table", preprocessing with "columns" and no "table"), else None.

    >>> older_table_record({"kind": "table", "preprocessing": {"columns": ["a"], "categorical": {}}})
    {'columns': ['a'], 'categorical': {}}
    """
    prep = meta.get("preprocessing", {})
    return prep if meta.get("kind") == "table" and "columns" in prep and "table" not in prep else None


def load_recorded_table(path: Path, label_column: str | None, record: dict) -> Dataset:
    """A table encoded with the record of a run trained before per-column schemas (model.json
    preprocessing with "columns" and "categorical": numeric columns as they are, categorical ones
    one-hot), as that run loaded it, so that its content hash and splits still apply.
    Raises NeuroclassError as ``load_table`` does."""
    df, labels = _read_labelled(path, label_column, {})
    x = encode_features(df, record, str(path))
    codes, classes = encode_labels(labels.to_numpy(), f"{path}: label column '{label_column}'")
    return Dataset(torch.from_numpy(x), torch.from_numpy(codes), classes, name=path.stem,
                   kind="table", source=str(path), preprocessing=dict(record))


def dropped_warnings(where: str, dropped: tuple[Column, ...]) -> list[str]:
    """One warning line for the ID-like columns left out (data/id_columns.py's), and one for each
    free-text or constant column; dates left out by data.dates=drop are logged, not warned."""
    ids = [DroppedColumn(c.name, c.reason) for c in dropped if c.kind is Kind.ID]
    lines = [dropped_message(where, ids)] if ids else []
    for c in dropped:
        if c.kind is Kind.TEXT:
            lines.append(f"{where}: column {shown_name(c.name)} {c.reason}: not used as a feature (free "
                         "text is never one-hot encoded); to use its values as categories anyway, "
                         f"declare it with --set data.categorical=[{c.name}]")
        elif c.kind is Kind.CONSTANT:
            lines.append(f"{where}: column {shown_name(c.name)} {c.reason}: not used as a feature "
                         "(it tells the classes nothing)")
    return lines


def schema_lines(where: str, schema: Schema) -> list[str]:
    """The log lines that state the schema: the feature columns by kind, then what became of dates.

    >>> schema_lines("t.csv", Schema((Column("age", Kind.NUMERIC), Column("c", Kind.CATEGORICAL, ("a", "b"))), ()))
    ['t.csv: 2 feature columns: numeric age; categorical c (2 categories)']
    """
    said = []
    for kind in FEATURE_KINDS:
        names = [c.name + (f" ({counted(len(c.categories), 'category', 'categories')})"
                           if kind is Kind.CATEGORICAL else "") for c in schema.columns if c.kind is kind]
        if names:
            more = f" and {len(names) - NAMED} more" if len(names) > NAMED else ""
            said.append(f"{kind.value} {', '.join(names[:NAMED])}{more}")
    lines = [f"{where}: {counted(len(schema.columns), 'feature column')}: {'; '.join(said)}"]
    kept = [c.name for c in schema.columns if c.kind is Kind.DATE]
    left = [c.name for c in schema.dropped if c.kind is Kind.DATE]
    if kept:
        lines.append(f"{where}: dates {', '.join(kept)} as calendar features ({', '.join(CALENDAR)}) "
                     "(data.dates=calendar; data.dates=drop leaves dates out)")
    if left:
        lines.append(f"{where}: dates {', '.join(left)} left out (data.dates=drop)")
    return lines
