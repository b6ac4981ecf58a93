"""How many training rows a family without rounds (logreg, svm) can fit before the deadline.

Such a family fits in one go: once its fit has started, the deadline cannot stop it. So, with a
deadline, it is first fitted on small stratified subsamples of the training rows (``PROBE_ROWS``,
doubling while the probes stay cheap), and their times give the cost of n rows:

- fit: t(n) = t_p * (n / n_p)^p, from the largest probe (n_p rows, t_p seconds), p the slope of
  log time over log rows between the last two probes, clamped to ``EXPONENT_RANGE`` (about 2 for
  an rbf SVM, 1 for logistic regression; ``DEFAULT_EXPONENT`` when one probe was all there was
  time for);
- prediction, of the rows predicted after the fit (validation and test): an rbf SVM compares each
  row with each support vector, so seconds = s * SV(n) * rows, with s the probe's seconds per
  support vector and row and SV(n) = SV_p * (n / n_p)^q, q measured between the probes like p and
  clamped to ``SUPPORT_EXPONENT_RANGE``; s is ``MEMORY_SLOWDOWN`` times larger once the support
  vectors outgrow ``CACHE_BYTES`` (each row then reads them all from memory) where the probe's
  fitted in it; a model without support vectors predicts at the probe's seconds per row, whatever n.

Then the family is fitted once on the largest stratified subsample whose fit and predictions are
expected to take at most (1 - ``SAFETY``) of the time left: every row when they all fit. A plan
smaller than a probe keeps the largest probe it can (already fitted, it costs nothing more).

>>> import numpy as np
>>> y = np.repeat([0, 1, 2], [500, 300, 2])
>>> rows = stratified_subsample(y, 100, seed=0)
>>> len(rows), np.bincount(y[rows]).tolist()  # every class kept, the rest in proportion
(100, [62, 37, 1])
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from neuroclass.classical.budget import Budget, FitData, StopReason

PROBE_ROWS = 1000  # the first probe's rows; each further probe doubles them
MAX_PROBES = 4  # 1,000 to 8,000 rows
PROBE_SHARE = 0.03  # a further probe only while the last one took under this share of the time left
NEXT_PROBE_COST = 3.0  # a probe of twice the rows costs about this many times more (between 2 and 4)
PREDICT_PROBE_ROWS = 1000  # rows predicted to time a probe's predictions
EXPONENT_RANGE = (1.0, 2.5)  # fit time ~ rows^p
DEFAULT_EXPONENT = 2.0  # p with one probe: an rbf SVM's (libsvm's SMO is about quadratic in the rows)
# p with one probe for a linear model (logreg's lbfgs, liblinear's dual coordinate descent): each
# iteration passes over every row once and the iterations grow slowly with the rows (Hsieh et al.
# 2008); measured on HOG rows of Fashion-MNIST, 1,000 -> 8,700 rows: 1.2-1.4
LINEAR_EXPONENT = 1.5
SUPPORT_EXPONENT_RANGE = (0.5, 1.0)  # support vectors ~ rows^q
# An rbf SVM's support vectors (float64 in libsvm) are read for every row predicted. Measured on this
# project's 2-core machines, 1296 HOG features: 0.61-0.64 us per support vector and row while they
# took up to 62 MB, 1.05-1.18 us from 89 MB on (out of the CPU's cache, whatever its nominal size).
CACHE_BYTES = 64 * 2**20
MEMORY_SLOWDOWN = 2.0
SUPPORT_VECTOR_BYTES = 8  # per feature
# share of the time left kept back for the error of extrapolating from a few thousand rows to tens
# of thousands (a shared machine's timings vary by about that much as well)
SAFETY = 0.2


@dataclass(frozen=True)
class RowTask:
    """What ``fit_rows`` needs from a family.

    ``fit(rows)``: a freshly fitted model on the training rows ``rows`` (int64 indices into
    ``FitData.x_train``). ``predict(model, x)``: what predicting rows costs after the fit (a decision
    function or probabilities), timed on a few rows. ``support_vectors(model)``: the model's support
    vector count, or None for a model whose prediction cost does not grow with its training rows.
    ``least_per_class``: rows of every class a subsample keeps (all of a class with fewer).
    ``exponent``: p in fit seconds ~ rows^p when one probe is all there is to measure it from.
    """

    fit: Callable[[np.ndarray], Any]
    predict: Callable[[Any, np.ndarray], Any]
    support_vectors: Callable[[Any], Optional[int]]
    least_per_class: int = 1
    exponent: float = DEFAULT_EXPONENT


@dataclass(frozen=True)
class Probe:
    """A fit on ``rows`` training rows: ``fit_seconds``; ``predict_seconds``: per row predicted;
    ``support_vectors``: the fitted model's, or None."""

    rows: int
    fit_seconds: float
    predict_seconds: float
    support_vectors: Optional[int]


@dataclass(frozen=True)
class CostModel:
    """Seconds to fit n rows and predict m rows, extrapolated from ``probes`` (ascending rows);
    ``features``: the columns of a row (the size of a support vector); ``default_exponent``: p
    with one probe."""

    probes: tuple[Probe, ...]
    features: int = 1
    default_exponent: float = DEFAULT_EXPONENT

    @property
    def exponent(self) -> float:
        """p in fit seconds ~ rows^p."""
        return _slope(self.probes, lambda p: p.fit_seconds, EXPONENT_RANGE, self.default_exponent)

    @property
    def support_exponent(self) -> float:
        """q in support vectors ~ rows^q."""
        return _slope(self.probes, lambda p: p.support_vectors, SUPPORT_EXPONENT_RANGE, 1.0)

    def fit_seconds(self, rows: int) -> float:
        last = self.probes[-1]
        return last.fit_seconds * (rows / last.rows) ** self.exponent

    def predict_seconds(self, rows: int, predicted: int) -> float:
        """Seconds to predict ``predicted`` rows with a model fitted on ``rows`` rows."""
        last = self.probes[-1]
        if not last.support_vectors:
            return last.predict_seconds * predicted
        support = last.support_vectors * (rows / last.rows) ** self.support_exponent
        slowdown = MEMORY_SLOWDOWN if self._bytes(last.support_vectors) <= CACHE_BYTES < self._bytes(support) else 1.0
        return last.predict_seconds * (support / last.support_vectors) * slowdown * predicted

    def _bytes(self, support_vectors: float) -> float:
        return support_vectors * self.features * SUPPORT_VECTOR_BYTES

    def seconds(self, rows: int, predicted: int) -> float:
        return self.fit_seconds(rows) + self.predict_seconds(rows, predicted)

    def rows_within(self, seconds: float, total: int, predicted: int) -> int:
        """The most rows, up to ``total``, whose fit and predictions take at most ``seconds``
        (0 when not even one row does)."""
        if self.seconds(total, predicted) <= seconds:
            return total
        low, high = 0, total  # seconds(low) fits (or low is 0), seconds(high) does not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if self.seconds(middle, predicted) <= seconds else (low, middle)
        return low

    def as_record(self) -> dict:
        """JSON-ready: the probes as [rows, fit seconds, prediction ms per row, support vectors],
        and the exponents."""
        return {"probes": [[p.rows, round(p.fit_seconds, 4), round(1000 * p.predict_seconds, 6), p.support_vectors]
                           for p in self.probes],
                "fit_exponent": round(self.exponent, 3),
                "support_vector_exponent": round(self.support_exponent, 3) if self.probes[-1].support_vectors
                else None}


def _slope(probes, value, bounds: tuple[float, float], default: float) -> float:
    """The log-log slope of ``value`` over rows between the last two probes, clamped to ``bounds``;
    ``default`` with fewer than two probes or a value that is not positive."""
    if len(probes) < 2:
        return default
    (a, b) = probes[-2:]
    if not value(a) or not value(b) or value(a) <= 0 or value(b) <= 0:
        return default
    slope = math.log(value(b) / value(a)) / math.log(b.rows / a.rows)
    return min(max(slope, bounds[0]), bounds[1])


def stratified_subsample(y: np.ndarray, n: int, seed: int, least: int = 1) -> np.ndarray:
    """Sorted int64 indices of about ``n`` rows of labels ``y`` (N,), every class in proportion and
    keeping at least ``least`` rows of each (all of a class with fewer), so a few more than ``n``
    when that takes more. All N rows when n >= N. The same seed gives the same rows (each class's
    rows are taken in one seeded order, so a larger n mostly keeps a smaller one's rows).

    Written here rather than taken from scikit-learn: its stratified sampling
    (``resample(stratify=...)``) may leave out a class with few rows, and a model fitted without a
    class would give fewer probability columns than the classes it was promised.
    """
    total = len(y)
    if n >= total:
        return np.arange(total, dtype=np.int64)
    classes, counts = np.unique(y, return_counts=True)
    share = counts * (n / total)
    quota = np.minimum(counts, np.maximum(np.floor(share).astype(np.int64), least))
    missing = n - int(quota.sum())  # at most one a class: one more row for the largest remainders
    if missing > 0:
        order = [c for c in np.argsort(quota - share, kind="stable") if quota[c] < counts[c]]
        quota[order[:missing]] += 1
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def fit_rows(task: RowTask, data: FitData, budget: Budget) -> tuple[Any, dict]:
    """Fit ``task`` on as many training rows as the time left allows (all of them without a
    deadline) -> (model, record part: ``rows_used``, ``rows_total``, ``why``, ``stop_reason``
    TIME_BUDGET when rows were left out, and ``row_budget``: the probes and the estimate).
    The rows predicted after the fit are ``budget.predict_rows``; the subsamples are drawn with
    ``data.seed``."""
    total = len(data.y_train)
    if budget.deadline is None or total < 2 * PROBE_ROWS:
        why = "no time budget" if budget.deadline is None else "too few to need a time estimate"
        return task.fit(np.arange(total)), _part(total, total, f"all {total:,} rows: {why}")
    probes, models = _probe(task, data, budget)
    cost = CostModel(tuple(probes), data.x_train.shape[1], task.exponent)
    left = budget.deadline - budget.clock()
    planned = cost.rows_within(left * (1 - SAFETY), total, budget.predict_rows)
    if planned <= probes[-1].rows:  # a probe is as large as it gets: keep it rather than fit again
        index = max([i for i, p in enumerate(probes) if p.rows <= planned], default=0)
        model, used = models[index], probes[index].rows
    else:
        rows = stratified_subsample(data.y_train, planned, data.seed, task.least_per_class)
        model, used = task.fit(rows), len(rows)
    predicted, minutes = budget.predict_rows, f"{max(0.0, left) / 60:.1f} minutes"
    if used >= total:
        needed = cost.seconds(total, predicted) / 60
        why = f"all {total:,} rows fit in the time budget (about {needed:.1f} of {minutes})"
    else:
        why = f"time budget: {used:,} of {total:,} rows fit in {minutes}"
    part = _part(used, total, why)
    part["row_budget"] = {**cost.as_record(), "seconds_left": round(left, 3), "predicted_rows": predicted,
                          "estimated_seconds": round(cost.seconds(used, predicted), 3)}
    return model, part


def _probe(task: RowTask, data: FitData, budget: Budget) -> tuple[list[Probe], list[Any]]:
    """Fit ``task`` on PROBE_ROWS rows, then twice as many, ... while a probe is at most half the
    rows and the next one is expected to take under PROBE_SHARE of the time left."""
    probes, models = [], []
    timed = data.x_train[:PREDICT_PROBE_ROWS]  # prediction costs the same whichever rows it sees
    rows, total = PROBE_ROWS, len(data.y_train)
    while len(probes) < MAX_PROBES and 2 * rows <= total:
        subsample = stratified_subsample(data.y_train, rows, data.seed, task.least_per_class)
        with warnings.catch_warnings():  # a probe's convergence warnings are not the fit's
            warnings.simplefilter("ignore")
            start = budget.clock()
            model = task.fit(subsample)
            fitted = budget.clock()
            task.predict(model, timed)
            done = budget.clock()
        probes.append(Probe(len(subsample), fitted - start, (done - fitted) / len(timed),
                            task.support_vectors(model)))
        models.append(model)
        if (done - start) * NEXT_PROBE_COST > PROBE_SHARE * (budget.deadline - done):
            break
        rows *= 2
    return probes, models


def _part(used: int, total: int, why: str) -> dict:
    return {"rows_used": int(used), "rows_total": int(total), "why": why,
            "stop_reason": StopReason.TIME_BUDGET if used < total else StopReason.COMPLETE}
