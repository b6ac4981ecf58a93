"""A table run's inputs as explain names and attributes them: by the table's columns.

A table run's model inputs come from its fitted preprocessing (data/table_prep.py): numbers,
0/1 missing-value columns, and the categorical columns either one-hot ("colour=red", one 0/1
input per category of the file) or, with data.encoding=embedding, one code per column (0..n-1 the
file's categories sorted, -1 a category the file did not hold), placed last. An mlp looks each
code up in a learned table (an embedding: one vector per category; models/mlp.py) and puts the
vectors after the other inputs, so its first dense layer takes
[the other inputs, colour's vector, size's vector, ...] (``TableLayout``).

Integrated gradients cannot move along a path between integer codes (the lookup has no gradient),
so for such a run the attributions are computed where the codes have become numbers: at the input
of the first dense layer, from a baseline whose categorical columns hold no category (code -1:
an unseen category's vector, fixed at zero, as one-hot's all-zero block), each column's share the
sum over its vector's entries (Captum's LayerIntegratedGradients; the sum over all inputs stays the
logit's change along the path).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neuroclass.data.table_prep import UNKNOWN_CODE
from neuroclass.evaluation.explain_attribution import IG_BATCH, IG_STEPS, Attribution, SeenLogits
from neuroclass.evaluation.report.importance import feature_labels
from neuroclass.models.layers import Classifier

UNSEEN = "(a category the training file did not hold)"


@dataclass(frozen=True)
class CodeColumn:
    """A categorical column that reaches the network as a code: its ``name``, the file's
    ``categories`` (code i is categories[i]) and ``width``, the length of its learned vectors."""

    name: str
    categories: tuple[str, ...]
    width: int

    def category(self, code: float) -> str:
        """The category of ``code`` (UNSEEN outside 0..n-1)."""
        i = int(round(float(code)))
        return self.categories[i] if 0 <= i < len(self.categories) else UNSEEN


@dataclass(frozen=True)
class TableLayout:
    """Where a table run's inputs come from. ``names``: one per model input (what the network is
    given, before any embedding), with one-hot inputs as "column=category" and code inputs as the
    column's name; ``codes``: the code columns, the last ``len(codes)`` inputs, in order (() for a
    one-hot run, whose inputs are all numbers)."""

    names: tuple[str, ...]
    codes: tuple[CodeColumn, ...] = ()

    @property
    def numeric(self) -> int:
        """How many inputs come before the code columns."""
        return len(self.names) - len(self.codes)

    def input_names(self, row: np.ndarray) -> list[str]:
        """A name per model input for ``row`` (D,): code inputs as "colour=red (code 1)".

        >>> layout = TableLayout(("age", "colour"), (CodeColumn("colour", ("blue", "red"), 2),))
        >>> layout.input_names(np.array([0.3, 1.0]))
        ['age', 'colour=red (code 1)']
        """
        coded = [f"{c.name}={c.category(v)} (code {int(round(float(v)))})"
                 for c, v in zip(self.codes, row[self.numeric:])]
        return list(self.names[:self.numeric]) + coded

    def dense_input_names(self, row: np.ndarray) -> list[str]:
        """A name per input of the first dense layer: the numeric inputs, then each code column's
        vector entry by entry, "colour=red: vector[0]", ...

        >>> layout = TableLayout(("age", "colour"), (CodeColumn("colour", ("blue", "red"), 2),))
        >>> layout.dense_input_names(np.array([0.3, 1.0]))
        ['age', 'colour=red: vector[0]', 'colour=red: vector[1]']
        """
        out = list(self.names[:self.numeric])
        for column, code in zip(self.codes, row[self.numeric:]):
            out += [f"{column.name}={column.category(code)}: vector[{j}]" for j in range(column.width)]
        return out

    def blocks(self) -> list[slice]:
        """Each model input's entries in the first dense layer's input: one entry per numeric
        input, the column's vector per code input."""
        out = [slice(i, i + 1) for i in range(self.numeric)]
        start = self.numeric
        for column in self.codes:
            out.append(slice(start, start + column.width))
            start += column.width
        return out

    @property
    def dense_width(self) -> int:
        return self.numeric + sum(c.width for c in self.codes)


def table_layout(preprocessing: dict, width: int, net: nn.Module) -> TableLayout:
    """The layout of a table run's ``width`` model inputs from model.json's ``preprocessing``
    record (its feature names, and under table.embedding the code columns and their category
    counts) and the network ``net``, whose ``embeddings`` (an mlp's, one nn.Embedding per code
    column) give the vectors' widths. A run without code columns, or whose network does not embed
    as many columns as the record names, gets the feature names alone (``codes`` ())."""
    names = tuple(feature_labels(preprocessing, width))
    table = preprocessing.get("table", {})
    coded = table.get("embedding", {}).get("columns", [])
    embeddings = list(getattr(net, "embeddings", ()))
    if not coded or len(embeddings) != len(coded) or len(coded) > width:
        return TableLayout(names)
    categories = {c["name"]: tuple(c.get("categories", ())) for c in table.get("columns", ())}
    codes = tuple(CodeColumn(name, categories.get(name, ()), int(e.embedding_dim))
                  for name, e in zip(coded, embeddings))
    return TableLayout(names[:width - len(codes)] + tuple(c.name for c in codes), codes)


def no_category_baseline(baseline: torch.Tensor, layout: TableLayout) -> torch.Tensor:
    """``baseline`` (1, D) with its code inputs at UNKNOWN_CODE: no category, whose vector is zero."""
    if not layout.codes:
        return baseline
    out = baseline.clone()
    out[:, layout.numeric:] = UNKNOWN_CODE
    return out


def embedded_maps(model: Classifier, layer: str, layout: TableLayout, seen: torch.Tensor, targets: dict[str, int],
                  baseline: torch.Tensor, baseline_words: str, method: str) -> list[Attribution]:
    """Attributions (D,) per model input of a run with code columns, for each (role, class index)
    of ``targets``, computed at the input of the first dense layer ``layer`` (a path in
    ``model.net``) and summed over each column's entries (``TableLayout.blocks``). ``method``:
    "integrated_gradients" (from ``baseline`` (1, D), described by ``baseline_words``) or
    "saliency" (per column the Euclidean norm of the logit's gradient with respect to the
    column's entries: |gradient| for a number, the gradient's length for a vector)."""
    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    forward = SeenLogits(model).eval()
    module = model.net.get_submodule(layer)
    blocks = layout.blocks()
    out = []
    for role, target in targets.items():
        x = seen.detach().clone()
        if method == "saliency":
            grad = LayerGradientXActivation(forward, module, multiply_by_inputs=False).attribute(
                x, target=target, attribute_to_layer_input=True)[0].detach().double().cpu().numpy()
            values = np.array([np.linalg.norm(grad[b]) for b in blocks])
            detail = ("size of the gradient of the class's logit at the first dense layer's input: |gradient| for "
                      "a number, its Euclidean length over a categorical column's learned vector")
            name = "saliency"
        else:
            shares, gap = LayerIntegratedGradients(forward, module).attribute(
                x, baselines=baseline, target=target, n_steps=IG_STEPS, internal_batch_size=IG_BATCH,
                attribute_to_layer_input=True, return_convergence_delta=True)
            shares = shares[0].detach().double().cpu().numpy()
            values = np.array([shares[b].sum() for b in blocks])
            detail = (f"{IG_STEPS} steps from {baseline_words}, at the first dense layer's input (a categorical "
                      "column's share: the sum over its learned vector); the attributions add up to the logit's "
                      f"change along the path within {abs(float(gap.reshape(-1)[0])):.2g}")
            name = "integrated gradients"
        out.append(Attribution(name, int(target), role, values.astype(np.float32), detail))
    return out
