"""Label checks made once the data is loaded and before it is split.

Two kinds of trouble are caught here. Label values (table cells, class folder names) that differ
only by surrounding spaces, letter case or Unicode form ("yes", "yes ", " Yes", the full-width
"ｙｅｓ") name one class: they are merged, with one warning and a record in ``ds.issues``, or
refused when ``data.labels`` is "strict". And a table column that does not hold classes at all (a
continuous target, an ID column, more distinct values than the rows can teach) is refused with the
reason and what to do.
"""
from __future__ import annotations

import json
import unicodedata
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from neuroclass.data.dataset import Dataset
from neuroclass.data.issues import MergedLabel
from neuroclass.errors import NeuroclassError

LABEL_POLICIES = ("merge", "strict")
# a class needs an example to train on and one to test on: a label column with fewer than two
# rows per distinct value on average is not a column of classes
MIN_ROWS_PER_CLASS = 2.0
# a measurement or count read as classes (whole-number magnesium levels, ages, prices) has many
# values seen once: the tails of a continuous distribution. A column of classes may have a few
# rare classes, but a class seen once is never both trained on and tested, so when more than a
# quarter of the classes are single rows the column is refused. Below 8 classes one or two rare
# classes are a large fraction by chance (2 of 7), and the small-class warning covers them. Only
# numeric labels are judged so: named classes with a long tail (species, products) are classes.
MIN_CLASSES_FOR_SINGLETONS = 8
MAX_SINGLETON_FRACTION = 0.25
SHOWN = 5  # examples of offending values quoted in a message


def label_key(name: str) -> str:
    """What two spellings of one label share: NFKC form, surrounding spaces removed, case folded.

    >>> label_key(" Yes "), label_key("ｙｅｓ")
    ('yes', 'yes')
    """
    return unicodedata.normalize("NFKC", str(name)).strip().casefold()


def quoted_list(values: list[str]) -> str:
    """'"a"', '"a" and "b"', '"a", "b" and "c"': values in double quotes, spaces visible.

    >>> quoted_list(["yes", "yes ", " yes"])
    '"yes", "yes " and " yes"'
    """
    shown = [json.dumps(str(v), ensure_ascii=False) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def quoted_spellings(values: list[str]) -> str:
    """``quoted_list`` of spellings of one label; when two of them look the same on screen (the
    same characters in another Unicode form), the ones not in the composed form (NFC) show their
    non-ASCII code points as escapes and "(Unicode forms)" follows.

    >>> print(quoted_spellings(["caf\u00e9", "cafe\u0301"]))
    "café" and "cafe\u0301" (Unicode forms)
    """
    composed = [unicodedata.normalize("NFC", str(v)) for v in values]
    if len(set(composed)) == len(values):
        return quoted_list(values)
    shown = [json.dumps(str(v), ensure_ascii=v != c) for v, c in zip(values, composed)]
    return (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]) + " (Unicode forms)"


def near_duplicate_groups(classes: list[str], counts: np.ndarray) -> list[tuple[str, list[int]]]:
    """(merged name, positions in ``classes``) for each group of two or more names with the same
    ``label_key``. The merged name is the group's most frequent spelling (``counts`` per class),
    surrounding spaces removed; ties go to the first name in sorted order. Positions are listed
    most frequent first.

    >>> near_duplicate_groups(["no", " yes", "yes", "yes "], np.array([5, 1, 9, 2]))
    [('yes', [2, 3, 1])]
    """
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(classes):
        groups.setdefault(label_key(name), []).append(i)
    out = []
    for members in groups.values():
        if len(members) > 1:
            members = sorted(members, key=lambda i: (-int(counts[i]), str(classes[i])))
            out.append((unicodedata.normalize("NFC", str(classes[members[0]])).strip(), members))
    return sorted(out)


def merge_near_duplicate_labels(ds: Dataset, policy: str = "merge") -> Dataset:
    """``ds`` with labels that differ only by surrounding spaces, case or Unicode form read as one
    class (classes stay sorted; ``ds.issues.merged_labels`` records each merge and one warning line
    names them all), or ``ds`` itself when there are none.

    ``policy``: "merge", or "strict" to raise NeuroclassError naming the near-duplicates instead.

    Example::

        ds = Dataset(torch.zeros(3, 2), torch.tensor([0, 1, 2]), [" yes", "no", "yes"], "t", "table")
        merge_near_duplicate_labels(ds).classes
        # -> ['no', 'yes'], and the warning 't: " yes" and "yes" read as one class "yes" (...)'
    """
    if policy not in LABEL_POLICIES:
        raise NeuroclassError(f"data.labels must be one of {', '.join(LABEL_POLICIES)}. Got {policy!r} instead.")
    counts = np.bincount(ds.y.numpy(), minlength=len(ds.classes))
    groups = near_duplicate_groups(ds.classes, counts)
    if not groups:
        return ds
    where = ds.source or ds.name
    said = "; ".join(f"{quoted_spellings([ds.classes[i] for i in members])} read as one class "
                     f"{json.dumps(into, ensure_ascii=False)}" for into, members in groups)
    if policy == "strict":
        raise NeuroclassError(f"{where}: labels differ only by surrounding spaces, letter case or Unicode "
                              f"form ({said.replace(' read as one class', ' would be class')}); "
                              "correct them in the data, or let neuroclass merge them with "
                              "--set data.labels=merge")
    name_of = list(ds.classes)
    for into, members in groups:
        for i in members:
            name_of[i] = into
    classes = sorted(set(name_of))
    remap = torch.tensor([classes.index(name) for name in name_of], dtype=torch.int64)
    ds.issues.merged_labels.extend(MergedLabel(into, tuple(ds.classes[i] for i in members))
                                   for into, members in groups)
    warnings.warn(f"{where}: {said} (labels that differ only by surrounding spaces, letter case or "
                  "Unicode form; --set data.labels=strict refuses them instead)", stacklevel=3)
    return replace(ds, y=remap[ds.y], classes=classes)


def check_label_column(values: np.ndarray, where: str) -> None:
    """Refuse a label column that does not hold classes: numbers that are not whole (a continuous
    target), a different value in every row (an ID), or fewer than MIN_ROWS_PER_CLASS rows per
    distinct value, or numeric labels with many classes of which more than MAX_SINGLETON_FRACTION
    have one row (a measurement or count). ``values`` (N,) as read from the table; ``where`` names file and column.
    Raises NeuroclassError saying why and what to do.

    >>> check_label_column(np.array([0.5, 1.25, 2.0, 0.5]), "t.csv: label column 'y'")
    Traceback (most recent call last):
    neuroclass.errors.NeuroclassError: t.csv: label column 'y' holds numbers that are not whole (0.5, 1.25): it looks like a continuous target, not classes; pick the column that holds the classes with --label-column, or bin the values into classes first
    """
    values = np.asarray(values)
    rows = len(values)
    if values.dtype.kind == "f" and np.isfinite(values).all() and not np.all(values == np.round(values)):
        fractional = first_seen(values[values != np.round(values)])[:SHOWN]
        raise NeuroclassError(f"{where} holds numbers that are not whole ({', '.join(f'{v:g}' for v in fractional)}"
                              f"{', ...' if len(fractional) == SHOWN else ''}): it looks like a continuous "
                              "target, not classes; pick the column that holds the classes with "
                              "--label-column, or bin the values into classes first")
    distinct = len(first_seen(values))
    if rows >= 3 and distinct == rows:
        raise NeuroclassError(f"{where} holds a different value in each of its {rows:,} rows, like an ID "
                              "column: no class has two examples to train and test on; pick the column "
                              "that holds the classes with --label-column")
    if distinct > rows / MIN_ROWS_PER_CLASS:
        raise NeuroclassError(f"{where} holds {distinct:,} distinct values in {rows:,} rows, fewer than "
                              f"{MIN_ROWS_PER_CLASS:g} examples per class on average: too many classes "
                              "for the rows to teach; pick the column that holds the classes with "
                              "--label-column, or group the values into fewer classes")
    _check_singletons(values, where)


def _check_singletons(values: np.ndarray, where: str) -> None:
    """Refuse numeric labels with MIN_CLASSES_FOR_SINGLETONS or more classes of which more than
    MAX_SINGLETON_FRACTION have a single row; text labels (named classes) are not judged so."""
    if not _numeric(values):
        return
    _, counts = np.unique(values.astype(str) if values.dtype.kind == "O" else values, return_counts=True)
    single = int(np.sum(counts == 1))
    if len(counts) >= MIN_CLASSES_FOR_SINGLETONS and single > MAX_SINGLETON_FRACTION * len(counts):
        raise NeuroclassError(f"{where} holds {len(counts):,} distinct values in {len(values):,} rows and "
                              f"{single:,} of them occur in one row only: it looks like a measurement or "
                              "count, not classes; pick the column that holds the classes with "
                              "--label-column, bin the values into classes, or add examples of the rare "
                              "classes")


def _numeric(values: np.ndarray) -> bool:
    """Whether every label is a number (a numeric column, or text that all parses as numbers).

    >>> _numeric(np.array([3, 1])), _numeric(np.array(["3", "1.0"], dtype=object)), _numeric(np.array(["a", "1"]))
    (True, True, False)
    """
    if values.dtype.kind in "iuf":
        return True
    return bool(pd.to_numeric(pd.Series(values.astype(str)), errors="coerce").notna().all())


def first_seen(values: np.ndarray) -> list:
    """Distinct values in order of first appearance (numbers, or anything as text).

    >>> first_seen(np.array([3, 1, 3, 2]))
    [3, 1, 2]
    """
    seen: dict = {}
    for v in values.tolist():
        seen.setdefault(v, None)
    return list(seen)
