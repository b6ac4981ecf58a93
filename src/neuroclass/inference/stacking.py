"""The stacker of a stacking ensemble: scikit-learn's LogisticRegression on the members' probabilities.

Stacked generalization (Wolpert 1992, "Stacked generalization", Neural Networks 5(2)) learns how to
combine models from predictions they made on examples they did not train on; here those are the
out-of-fold probabilities that k-fold cross-validation leaves (oof.npz), so the stacker never sees
a test label, nor a probability a member gave an example it had learnt. The fitted stacker is saved
as JSON (coef_, intercept_, classes_ and the settings), never pickled: loading it runs no code from
a file.

Example::

    stacker = fit_stacker(np.stack([oof_a.proba, oof_b.proba]), oof_a.label)
    record = stacker_record(stacker, fitted_on={"rows": len(oof_a.label)})
    stacked_probabilities(stacker_from_record(record), member_proba, n_classes=10).shape
    # -> (N, 10)
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from neuroclass.errors import NeuroclassError

# L2-regularised multinomial logistic regression: the members' probabilities are strongly
# correlated (they agree on most examples), which an unregularised fit turns into huge weights
SETTINGS = {"C": 1.0, "max_iter": 1000, "solver": "lbfgs"}


def stack_features(member_proba: np.ndarray) -> np.ndarray:
    """The stacker's inputs: (M members, N, K) probabilities -> (N, M * K) float64, member ``m``'s
    K probabilities in columns ``m * K`` to ``m * K + K - 1``.

    >>> stack_features(np.array([[[0.9, 0.1]], [[0.6, 0.4]]])).tolist()
    [[0.9, 0.1, 0.6, 0.4]]
    """
    member_proba = np.asarray(member_proba, dtype=np.float64)
    m, n, k = member_proba.shape
    return member_proba.transpose(1, 0, 2).reshape(n, m * k)


def fit_stacker(member_proba: np.ndarray, labels: np.ndarray) -> LogisticRegression:
    """A LogisticRegression (``SETTINGS``) fitted on ``stack_features(member_proba)`` against
    ``labels`` (int64 (N,), class indices). ``member_proba``: (M, N, K) out-of-fold probabilities.
    Raises NeuroclassError when the labels hold fewer than two classes."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise NeuroclassError("stacking: the out-of-fold labels hold fewer than two classes; "
                              "cross-validate on data with at least two classes")
    return LogisticRegression(**SETTINGS).fit(stack_features(member_proba), labels)


def stacker_record(stacker: LogisticRegression, fitted_on: dict) -> dict:
    """stacker.json's content: the fitted LogisticRegression's coef_ (K' x M*K), intercept_ (K'),
    classes_ (K' class indices: those the out-of-fold labels hold), its settings, and
    ``fitted_on`` (what it was fitted on, for the record)."""
    return {"model": "sklearn.linear_model.LogisticRegression", "settings": dict(SETTINGS),
            "coef_": stacker.coef_.tolist(), "intercept_": stacker.intercept_.tolist(),
            "classes_": [int(c) for c in stacker.classes_], "n_features_in_": int(stacker.n_features_in_),
            "fitted_on": fitted_on}


def stacker_from_record(record: dict, source: str = "stacker.json") -> LogisticRegression:
    """A LogisticRegression ready to predict, from ``stacker_record``'s dict: the attributes are set
    on a new estimator (no pickle). Raises NeuroclassError naming ``source`` when a field is
    missing or the shapes disagree."""
    try:
        stacker = LogisticRegression(**record["settings"])
        stacker.coef_ = np.asarray(record["coef_"], dtype=np.float64)
        stacker.intercept_ = np.asarray(record["intercept_"], dtype=np.float64)
        stacker.classes_ = np.asarray(record["classes_"], dtype=np.int64)
        stacker.n_features_in_ = int(record["n_features_in_"])
    except (KeyError, TypeError, ValueError) as exc:
        raise NeuroclassError(f"{source}: damaged ({type(exc).__name__}: {exc}); build the ensemble again") from None
    rows = 1 if len(stacker.classes_) == 2 else len(stacker.classes_)  # binary: one row of coefficients
    if stacker.coef_.shape != (rows, stacker.n_features_in_) or stacker.intercept_.shape != (rows,):
        raise NeuroclassError(f"{source}: coef_ {stacker.coef_.shape} and intercept_ {stacker.intercept_.shape} "
                              f"do not fit {len(stacker.classes_)} classes and {stacker.n_features_in_} "
                              "features; build the ensemble again")
    return stacker


def stacked_probabilities(stacker: LogisticRegression, member_proba: np.ndarray, n_classes: int) -> np.ndarray:
    """The stacker's probabilities (N, ``n_classes``) float32 for members' probabilities (M, N, K);
    a class that the out-of-fold labels never held gets probability 0. Raises NeuroclassError when
    the members' count or classes differ from those the stacker was fitted on."""
    features = stack_features(member_proba)
    if features.shape[1] != stacker.n_features_in_:
        raise NeuroclassError(f"stacking: the stacker was fitted on {stacker.n_features_in_} inputs, the members "
                              f"give {features.shape[1]}; build the ensemble again")
    out = np.zeros((features.shape[0], n_classes), dtype=np.float64)
    out[:, stacker.classes_] = stacker.predict_proba(features)
    return out.astype(np.float32)
