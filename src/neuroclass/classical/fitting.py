"""Fit a classical family on feature rows and turn its output into probabilities over every class.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(60, 4)).astype(np.float32); y = (x[:, 0] > 0).astype(np.int64)
>>> fitted = fit_classical("logreg", {}, x, y, None, None, classes=3, seed=0, threads=1, deadline=None)
>>> predict_proba(fitted, x[:2]).shape  # class 2 had no training row: its column is 0
(2, 3)
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from neuroclass.classical.budget import Budget, FitData, StopReason
from neuroclass.classical.families import CLASSICAL, family_options
from neuroclass.errors import NeuroclassError, counted


@dataclass(frozen=True)
class FittedClassical:
    """A fitted classical model.

    ``family``: the family name; ``estimator``: what the family predicts with (a scikit-learn
    estimator, an XGBClassifier, or a lightgbm.Booster); ``classes``: K, the classes of the task;
    ``present``: int64 (k,), the class numbers seen in training, ascending (the model's k
    probability columns, in this order); ``record``: what fitting did, JSON-ready:

    - ``family``; ``stop_reason``: "time_budget", "early_stopping" or "complete" (StopReason values);
    - ``rounds``: rounds fitted (trees of a forest, boosting rounds or iterations; None without
      rounds) and ``rounds_used``: the rounds the saved model predicts with: for the boosting
      families (xgboost, lightgbm, hist_gb) with validation rows the rounds up to the best one,
      ``best_iteration`` + 1 (hist_gb keeps every round only when the deadline left no time to fit
      its best rounds again), else ``rounds``;
    - ``best_iteration``: 0-based index of the round with the lowest validation log-loss (None
      without validation rows or rounds); ``early_stopping``: how it was decided;
    - ``history``: per-round validation ``val_log_loss`` / ``val_accuracy`` lists, when the library
      reports them; ``fit_seconds`` (by the injected clock); ``classes_missing``: classes with no
      training row (their probability is 0); ``val_rows_dropped``: validation rows of those classes,
      left out of early stopping; ``warnings``: the library's warnings while fitting (convergence);
    - ``rows_used`` of ``rows_total`` training rows, and ``why`` in words ("time budget: 24,000 of
      54,000 rows fit in 8.1 minutes"): logreg and svm under a deadline fit on a stratified
      subsample when all rows would not fit (stop_reason "time_budget"), with ``row_budget``: the
      probe fits and the estimate (classical/row_budget.py); svm's ``calibration``: how its
      probabilities were fitted.

    A loaded model's record holds ``family`` only (the run's files keep the fitting record).
    """

    family: str
    estimator: Any
    classes: int
    present: np.ndarray
    record: dict = field(default_factory=dict)


def fit_classical(name: str, options: dict, x_train: np.ndarray, y_train: np.ndarray,
                  x_val: Optional[np.ndarray], y_val: Optional[np.ndarray], classes: int, seed: int,
                  threads: Optional[int], deadline: Optional[float],
                  clock: Callable[[], float] = time.perf_counter, *, predict_rows: int = 0) -> FittedClassical:
    """Fit family ``name`` with ``options`` (a mapping of its option fields).

    ``x_train``: float32 (N, D); ``y_train``: int64 (N,) in 0..classes-1; ``x_val``/``y_val``: (M, D) /
    (M,) validation rows for early stopping, or None; ``seed``: random_state; ``threads``: n_jobs
    and the BLAS/OpenMP thread limit while fitting (None: the libraries' defaults); ``deadline``:
    the ``clock()`` reading (seconds) by which the fit, and the prediction of ``predict_rows`` rows
    after it (validation and test), should be done, or None: families with rounds stop adding rounds
    when it passes; logreg and svm fit on as many training rows as the time left allows
    (row_budget.py); knn stores the rows (its cost comes when it predicts).

    Raises NeuroclassError for an unknown family or option, a bad option value, arrays of the
    wrong shape, labels outside 0..classes-1, or training rows of fewer than two classes.
    """
    family = CLASSICAL.get(name)
    opts = family_options(name, options)
    data = _fit_data(x_train, y_train, x_val, y_val, classes, seed)
    estimator = family.build(opts, seed, threads)
    start = clock()
    with _thread_limit(threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted, part = family.fit(estimator, opts, data, Budget(deadline, clock, predict_rows))
    rows = len(data.y_train)
    record = {"family": name, "rounds": None, "rounds_used": None, "best_iteration": None,
              "early_stopping": "none", "history": {}, "rows_used": rows, "rows_total": rows,
              "why": f"all {rows:,} rows", **part,
              "stop_reason": StopReason(part["stop_reason"]).value, "fit_seconds": clock() - start,
              "classes_missing": sorted(set(range(classes)) - set(data.present.tolist())),
              "val_rows_dropped": data.val_dropped,
              "warnings": sorted({str(w.message).splitlines()[0] for w in caught
                                  if not issubclass(w.category, DeprecationWarning)})}
    return FittedClassical(name, fitted, classes, data.present, record)


def predict_proba(fitted: FittedClassical, x: np.ndarray) -> np.ndarray:
    """Probabilities of every class: float64 (N, K), rows summing to 1. ``x``: float32 (N, D) like
    the training rows. A class with no training row gets probability 0."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise NeuroclassError(f"predict_proba: x must be a 2-D array (rows, features). Got shape {x.shape}.")
    part = np.asarray(CLASSICAL.get(fitted.family).proba(fitted.estimator, x), dtype=np.float64)
    out = np.zeros((len(x), fitted.classes), dtype=np.float64)
    out[:, fitted.present] = part
    return out / out.sum(axis=1, keepdims=True)


def _fit_data(x_train, y_train, x_val, y_val, classes: int, seed: int) -> FitData:
    """Check the arrays and re-number the labels to the classes seen in training."""
    x_train, y_train = _rows("training", x_train, y_train, classes)
    present = np.unique(y_train)
    if len(present) < 2:
        raise NeuroclassError(f"the training rows hold {counted(len(present), 'class', 'classes')} "
                              f"({present.tolist()}); a classifier needs at least two")
    if x_val is None or y_val is None or len(y_val) == 0:
        return FitData(x_train, np.searchsorted(present, y_train), None, None, present, classes, seed=seed)
    x_val, y_val = _rows("validation", x_val, y_val, classes)
    if x_val.shape[1] != x_train.shape[1]:
        raise NeuroclassError(f"the validation rows have {x_val.shape[1]} features, the training rows "
                              f"{x_train.shape[1]}; give both the same columns")
    seen = np.isin(y_val, present)
    x_val, y_val = x_val[seen], y_val[seen]
    has_val = len(y_val) > 0
    return FitData(x_train, np.searchsorted(present, y_train), x_val if has_val else None,
                   np.searchsorted(present, y_val) if has_val else None, present, classes,
                   int((~seen).sum()), seed)


def _rows(what: str, x, y, classes: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.ascontiguousarray(x, dtype=np.float32), np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise NeuroclassError(f"the {what} rows must be x (N, D) and y (N,). Got x {x.shape}, y {y.shape}.")
    if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= classes):
        raise NeuroclassError(f"the {what} labels must be whole numbers 0..{classes - 1}. "
                              f"Got {y.dtype} from {y.min()} to {y.max()}.")
    return x, y.astype(np.int64)


def _thread_limit(threads: Optional[int]):
    """A context that holds BLAS and OpenMP pools to ``threads`` and restores them (threadpoolctl)."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    return nullcontext() if threads is None else threadpool_limits(limits=threads)
