"""What every classical family's training loop shares: the data as the estimator sees it, the time
budget it stops at, and why it stopped.

Labels are re-numbered to the classes present in the training rows (``FitData.present``): XGBoost
and LightGBM take labels 0..k-1 with none missing, and the estimators then give one probability
column per class they saw. ``fitting.predict_proba`` puts those columns back at their class
numbers and fills 0 for a class that had no training row.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Optional

import numpy as np

LIBRARY_ROUNDS = 100  # XGBoost's, LightGBM's and scikit-learn's default number of boosting rounds
# the most rounds under a time budget with validation rows, where early stopping and the deadline
# end the fit (AutoGluon's gradient-boosting models use the same cap with early stopping)
BUDGET_ROUNDS = 10_000


class StopReason(str, Enum):
    """Why fitting stopped adding rounds (trees, boosting iterations): the time budget ran out, the
    validation loss stopped improving, or every round asked for was fitted (and families without
    rounds: the fit finished)."""

    TIME_BUDGET = "time_budget"
    EARLY_STOPPING = "early_stopping"
    COMPLETE = "complete"


@dataclass(frozen=True)
class Budget:
    """``deadline``: the ``clock()`` reading (seconds) after which no round is added; None: no limit.
    ``clock``: a monotonic clock in seconds (``time.perf_counter``; tests inject a fake one).
    ``predict_rows``: rows predicted after the fit (validation and test) within the same deadline;
    the families without rounds leave time for them (row_budget.py)."""

    deadline: Optional[float]
    clock: Callable[[], float]
    predict_rows: int = 0

    def spent(self) -> bool:
        """True once ``clock()`` has passed the deadline."""
        return self.deadline is not None and self.clock() > self.deadline


@dataclass(frozen=True)
class FitData:
    """The training rows and, when there are any, the validation rows, with labels re-numbered.

    ``x_train``: float32 (N, D); ``y_train``: int64 (N,) in 0..k-1, where k = len(present);
    ``present``: the original class numbers seen in training, ascending (k of them);
    ``classes``: K, the number of classes of the task; ``x_val``/``y_val``: (M, D) / (M,) re-numbered
    like y_train, or None (no validation rows, or none of a class seen in training);
    ``val_dropped``: validation rows left out because training never saw their class;
    ``seed``: the fit's seed, which also draws the subsamples of training rows (row_budget.py).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: Optional[np.ndarray]
    y_val: Optional[np.ndarray]
    present: np.ndarray
    classes: int
    val_dropped: int = 0
    seed: int = 0

    @property
    def k(self) -> int:
        """The number of classes the estimator is trained on (those present in training)."""
        return len(self.present)

    @property
    def has_val(self) -> bool:
        return self.x_val is not None


def history_of(losses: list[float], errors: list[float] | None = None) -> dict:
    """A per-round validation history for the record: {"val_log_loss": [...], "val_accuracy": [...]}
    (accuracy = 1 - error rate); keys without values are left out."""
    out = {}
    if losses:
        out["val_log_loss"] = [float(v) for v in losses]
    if errors:
        out["val_accuracy"] = [1.0 - float(v) for v in errors]
    return out


def boosting_rounds(requested: Optional[int], budget: Budget, has_val: bool) -> tuple[int, str]:
    """The most boosting rounds to fit and why: ``requested`` when given; else, under a time budget
    with validation rows, BUDGET_ROUNDS, so that early stopping or the deadline, not an arbitrary
    count, ends the fit; else the libraries' default, LIBRARY_ROUNDS.

    >>> boosting_rounds(None, Budget(60.0, lambda: 0.0), has_val=True)
    (10000, 'until early stopping or the time budget (at most 10,000)')
    >>> boosting_rounds(None, Budget(None, lambda: 0.0), has_val=True)[0]
    100
    """
    if requested is not None:
        return requested, f"{requested:,} (model.options)"
    if budget.deadline is not None and has_val:
        return BUDGET_ROUNDS, f"until early stopping or the time budget (at most {BUDGET_ROUNDS:,})"
    why = "no time budget" if budget.deadline is None else "no validation rows to stop early on"
    return LIBRARY_ROUNDS, f"{LIBRARY_ROUNDS} (the libraries' default: {why})"
