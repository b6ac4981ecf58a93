"""The explanation page's parts for a table run: the row as the network sees it, the embedding
lookup of its categorical columns (data.encoding=embedding), and the attribution per feature.
"""
from __future__ import annotations

import numpy as np

from neuroclass.evaluation.explain import Explanation
from neuroclass.evaluation.explain_format import number
from neuroclass.evaluation.explain_steps import DenseStep
from neuroclass.evaluation.report.html import esc, note, table

TABLE_FEATURES = 20  # rows of a table run's attribution table
VECTOR_SHOWN = 8  # entries of a learned vector printed in the lookup table


def _is_code(found: Explanation, i: int) -> bool:
    layout = found.layout
    return layout is not None and bool(layout.codes) and i >= layout.numeric


def _value(found: Explanation, i: int) -> str:
    """Input ``i`` as seen: a number, or a category's code as the integer it is."""
    v = float(found.seen.reshape(-1)[i])
    return str(int(round(v))) if _is_code(found, i) else number(v)


def table_input(found: Explanation) -> tuple[str, str]:
    """The "input" section of a table run: (words, HTML)."""
    rows = [[name, _value(found, i)] for i, name in enumerate(found.input_names)]
    then = "and the model's standardization" if found.standardized else "which the network takes as it is"
    layout = found.layout
    if layout is not None and layout.codes:
        words = ("The row as the network sees it: each number after the run's preprocessing (imputing, scaling) "
                 f"{then}; each categorical column as the code of its category (its place among the training "
                 "file's categories, counted from 0; -1 for one the file did not hold), which the network looks up "
                 "in its learned embeddings (see the first dense layer).")
    else:
        words = ("The row as the network sees it: each feature after the run's preprocessing (imputing, scaling; "
                 f"a categorical column as one 0/1 input per category, named column=category), {then}.")
    row = "" if found.row is None else note(f"Data row {found.row} of the file (counted from 0).")
    return words, row + table(["feature", "value seen"], rows, numeric={1})


def embedding_lookup(found: Explanation, step: DenseStep) -> str:
    """The heading of a first dense layer that takes learned vectors, and its lookup table: each
    categorical column's category, code and vector, as the layer received them."""
    layout = found.layout
    widths = " + ".join(str(c.width) for c in layout.codes)
    heading = (f"<h3>{esc(step.name)}: embedding lookup + dense: {layout.numeric:,} numbers and "
               f"{len(layout.codes):,} categorical columns as learned vectors ({widths} entries) = "
               f"{step.inputs:,} inputs -> {step.units:,} units</h3>")
    rows = []
    codes = found.seen.reshape(-1)[layout.numeric:]
    for column, code, block in zip(layout.codes, codes, layout.blocks()[layout.numeric:]):
        vector = step.x[block]
        shown = ", ".join(number(v) for v in vector[:VECTOR_SHOWN]) + (", ..." if len(vector) > VECTOR_SHOWN else "")
        rows.append([column.name, column.category(code), str(int(round(float(code)))), f"[{shown}]"])
    words = note("Each categorical column's code picks one row of the column's embedding table, a vector learned "
                 "in training (a category the training file did not hold gets the zero vector); the layer takes "
                 "the numbers, then these vectors, one after another, and computes z = W x + b over all of them.")
    return heading + words + table(["column", "category", "code", "its learned vector"], rows)


def table_attribution(found: Explanation) -> tuple[str, str]:
    """The "attribution" section of a table run: (words, HTML)."""
    maps = found.attributions
    order = np.argsort(-np.abs(maps[0].values), kind="stable")[:TABLE_FEATURES]
    headers = ["feature", "value seen"] + [f"{a.method} ({a.role}: {found.classes[a.target]})" for a in maps]
    rows = [[found.input_names[i], _value(found, int(i))] + [number(a.values[i]) for a in maps] for i in order]
    details = "".join(note(f"{a.method}: {a.detail}") for a in maps[:1])
    embedded = (" A categorical column's share is computed on its learned vector, where the network has turned "
                "the code into numbers, and summed over the vector's entries." if found.layout is not None
                and found.layout.codes else "")
    what = ("How strongly a small change of each feature would move the class's logit (the largest first)."
            if maps[0].method == "saliency" else "How much each feature moved the class's logit (the largest first): "
            "positive values raised it, negative ones lowered it.")
    return (what + embedded,
            table(headers, rows, numeric=set(range(1, len(headers)))) + details)
