"""Likely mislabelled examples, found by confident learning (Northcutt, Jiang and Chuang 2021,
"Confident Learning: Estimating Uncertainty in Dataset Labels").

Each class j gets a threshold t_j: the mean probability of class j over the examples labelled j
(the model's typical self-confidence for that class). An example labelled y is suspect when
p_y < t_y (less sure of its label than usual) while some other class k has p_k >= t_k (as sure of
k as of a typical k); the suspect's predicted class is the most probable such k. Suspects are
ranked by the margin p_k - p_y. The probabilities must come from a model that did not train on
these examples (the test split, or cross-validation): a model that memorised a wrong label is
confident in it.
"""
from __future__ import annotations

import numpy as np

from neuroclass.errors import NeuroclassError

METHOD = ("confident learning: the given label's probability is below that class's mean "
          "self-confidence while another class's probability reaches its own; ranked by the "
          "probability margin between the two")


def likely_mislabelled(proba: np.ndarray, y: np.ndarray, classes: list[str], top: int = 20) -> dict:
    """Suspect examples, most suspicious first.

    Returns {"count": number of suspects, "examples": the ``top`` first as {"index", "label",
    "predicted", "label_probability", "predicted_probability"} (class names, plain floats),
    "method": one sentence}. A class no example carries has no threshold and is never predicted.

    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.95, 0.05]])
    >>> likely_mislabelled(proba, np.array([0, 0, 1, 1]), ["cat", "dog"])["examples"][0]["index"]
    3
    """
    proba, y = _check(proba, y, classes, top)
    n, k = proba.shape
    rows = np.arange(n)
    counts = np.bincount(y, minlength=k)
    sums = np.bincount(y, weights=proba[rows, y], minlength=k)
    # no example of a class: +inf, so nothing is ever "as sure as usual" of it
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    label_p = proba[rows, y]
    confident = proba >= thresholds  # (N, K): as sure of class k as a typical example of k
    confident[rows, y] = False
    candidates = np.where(confident, proba, -np.inf)
    predicted = candidates.argmax(1)
    suspect = (label_p < thresholds[y]) & confident.any(1)
    index = np.flatnonzero(suspect)
    margin = proba[index, predicted[index]] - label_p[index]
    order = index[np.lexsort((index, -margin))][:top]  # largest margin first, ties by index
    examples = [{"index": int(i), "label": classes[y[i]], "predicted": classes[predicted[i]],
                 "label_probability": float(label_p[i]),
                 "predicted_probability": float(proba[i, predicted[i]])} for i in order]
    return {"count": int(len(index)), "examples": examples, "method": METHOD}


def _check(proba, y, classes: list[str], top: int) -> tuple[np.ndarray, np.ndarray]:
    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise NeuroclassError(f"likely_mislabelled: proba must be (N, K) with K = {len(classes)} "
                              f"classes; got shape {proba.shape}")
    if y.ndim != 1 or len(y) != len(proba):
        raise NeuroclassError(f"likely_mislabelled: y must hold one label per row of proba; got "
                              f"{len(proba)} rows and labels of shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() >= len(classes))):
        raise NeuroclassError(f"likely_mislabelled: labels must be integers in 0..{len(classes) - 1}")
    if not np.isfinite(proba).all() or (proba < 0).any():
        raise NeuroclassError("likely_mislabelled: proba must hold finite probabilities >= 0")
    if top < 0:
        raise NeuroclassError(f"likely_mislabelled: top must be >= 0. Got {top} instead.")
    # float32 softmax rows sum to 1 only roughly; renormalising keeps thresholds comparable
    return proba / np.maximum(proba.sum(1, keepdims=True), 1e-12), y.astype(np.int64)
