"""The report's column summary of a table: the training split's values as the file holds them.

The feature summary beside it shows the model inputs, after imputation, scaling, one-hot encoding
and selection (a standardized input has mean 0 and std 1 by construction, which says nothing about
the data); this one shows each column of the file in its own units: numbers (and true/false as 0/1,
dates as their calendar parts) with min, mean, std and max over the values present, categories with
their count and most frequent one, and how many values are missing.
"""
from __future__ import annotations

import numpy as np

from neuroclass.data.schema import Kind, Schema
from neuroclass.errors import counted
from neuroclass.evaluation.report.html import fmt, table

MAX_COLUMNS = 60  # rows of the column summary


def column_summary(raw: np.ndarray, record: dict, where: str = "table") -> dict:
    """Per raw-matrix column statistics of ``raw`` (float (N, D_raw): a table's encoded rows, NaN
    where a value is missing, category codes 0..n-1) described by the schema ``record``
    (model.json preprocessing["table"]). -> {"count", "shown", "rows": [{"column", "kind", "missing",
    "min", "mean", "std", "max", "most_frequent"}]} (None where a statistic does not apply).

    >>> record = {"columns": [{"name": "age", "kind": "numeric"},
    ...                       {"name": "colour", "kind": "categorical", "categories": ["blue", "red"]}],
    ...           "encoded_names": ["age", "colour"], "missing": "impute"}
    >>> rows = column_summary(np.array([[20.0, 1.0], [np.nan, 1.0], [40.0, 0.0]]), record)["rows"]
    >>> rows[0]["mean"], rows[0]["missing"], rows[1]["most_frequent"]
    (30.0, 1, 'red (2 of 3; 2 categories)')
    """
    schema = Schema.from_record(record, where)
    rows, at = [], 0
    for column in schema.columns:
        for name in column.encoded_names():
            values = raw[:, at]
            present = values[~np.isnan(values)]
            row = {"column": name, "kind": column.kind.value, "missing": int(len(values) - len(present)),
                   "min": None, "mean": None, "std": None, "max": None, "most_frequent": None}
            if column.kind is Kind.CATEGORICAL:
                row["most_frequent"] = _most_frequent(present, column.categories)
            elif len(present):
                row.update(min=float(present.min()), mean=float(present.mean()), std=float(present.std()),
                           max=float(present.max()))
            rows.append(row)
            at += 1
    return {"count": len(rows), "shown": min(len(rows), MAX_COLUMNS), "rows": rows[:MAX_COLUMNS]}


def _most_frequent(codes: np.ndarray, categories: list[str]) -> str | None:
    """"red (2 of 3; 2 categories)": the most frequent known category among ``codes`` (an unseen
    category's code, -1, is not counted)."""
    known = codes[(codes >= 0) & (codes < len(categories))].astype(np.int64)
    if not len(known):
        return None
    counts = np.bincount(known, minlength=len(categories))
    top = int(counts.argmax())
    return (f"{categories[top]} ({counts[top]:,} of {len(codes):,}; "
            f"{counted(len(categories), 'category', 'categories')})")


def columns_html(summary: dict) -> str:
    """The column summary's heading and table (cells escaped by ``html.table``)."""
    rows = [[r["column"], r["kind"], fmt(r["missing"]), _cell(r["min"]), _cell(r["mean"]), _cell(r["std"]),
             _cell(r["max"]), r["most_frequent"] or ""] for r in summary["rows"]]
    return (f"<h3>Columns as in the file (training split, {summary['shown']} of {summary['count']})</h3>"
            + table(["column", "kind", "missing", "min", "mean", "std", "max", "most frequent"], rows,
                    numeric={2, 3, 4, 5, 6}))


def _cell(value: float | None) -> str:
    return "" if value is None else fmt(value)
