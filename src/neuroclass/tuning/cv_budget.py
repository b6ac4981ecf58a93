"""A cross-validation's time budget shared by its folds, recomputed as each fold ends.

Each fold is given what is left of the budget divided by the folds still to run, less the seconds a
fold takes outside its own training budget (writing its run folder, predicting its validation fold
and the test split for the out-of-fold record). That per-fold overhead is measured on the first
fold and held back for every fold after it (then measured again on each fold: the first's may
include one-time costs, the first imports and file writes of the process). Because the share is
recomputed after each fold, a fold that overruns is absorbed by the folds after it, and time a fold
did not use goes to the next. A fold's share is at least a useful minimum, MIN_FOLD_SHARE of the
first fold's budget (a fold trained on much less time than fold 1 is not the same configuration
trained K times, which is what the folds' mean measures): when holding the overhead back leaves
less, the fold is given the minimum if what is left covers the minimum for every fold left, and
the cross-validation fails only when it does not.

Example::

    budgets = FoldBudgets(total=90.0, k=3, clock=time.perf_counter)
    first = budgets.next_budget(1)             # 30.0: what is left / 3
    ...                                        # fold 1 trains, then its overhead is measured
    budgets.measured(2.5)                      # seconds fold 1 took outside its training budget
    second = budgets.next_budget(2)            # (left - 2 * 2.5) / 2
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from neuroclass.errors import NeuroclassError

# a fold's budget must be at least this share of fold 1's for the folds to train the same configuration
MIN_FOLD_SHARE = 0.2


def fold_budget(seconds_left: float, folds_left: int, reserve: float = 0.0) -> float:
    """Seconds for the next fold: what is left of the budget, less ``reserve`` seconds per fold
    left (the work after each fold that its own budget does not bound), divided by the folds left.
    A fold that ends early leaves its rest to the folds after it, so the whole ends within the
    budget. May be <= 0 when the budget is spent.

    >>> fold_budget(100.0, 4), fold_budget(100.0, 4, reserve=5.0)
    (25.0, 20.0)
    """
    return (seconds_left - folds_left * reserve) / folds_left


@dataclass
class FoldBudgets:
    """The time budget of a ``k``-fold cross-validation: ``total`` seconds counted by ``clock``
    from ``start`` (a ``clock()`` reading; default: the reading when the object is made).
    ``overhead``: the seconds the last finished fold took outside its training budget (0 until the
    first fold is measured); ``first``: fold 1's budget, seconds (None before it is given);
    ``given``: the budgets given so far, seconds, in fold order."""

    total: float
    k: int
    clock: Callable[[], float]
    start: float | None = None
    overhead: float = 0.0
    first: float | None = None
    given: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.start is None:
            self.start = self.clock()

    def next_budget(self, fold: int) -> float:
        """Seconds for fold ``fold`` (1..k): fold_budget of what is left now, the folds left
        (this one included) and the measured overhead, raised to MIN_FOLD_SHARE of fold 1's
        budget when what is left covers that for every fold left. Raises NeuroclassError, one
        line with the numbers and the fix, when it does not (or nothing is left for fold 1)."""
        left = self.start + self.total - self.clock()
        folds_left = self.k - fold + 1
        budget = fold_budget(left, folds_left, self.overhead)
        minimum = MIN_FOLD_SHARE * self.first if self.first is not None else 0.0
        if budget < minimum or budget <= 0:
            if fold_budget(left, folds_left) < minimum or left <= 0:
                raise NeuroclassError(self._too_short(fold, left, fold_budget(left, folds_left), minimum))
            budget = minimum
        if self.first is None:
            self.first = budget
        self.given.append(budget)
        return budget

    def measured(self, outside: float) -> None:
        """Record ``outside``: the seconds a finished fold took beyond what its own training
        budget bounds (negative readings count as 0), held back for each fold after it."""
        self.overhead = max(outside, 0.0)

    def _too_short(self, fold: int, left: float, budget: float, minimum: float) -> str:
        done, folds_left = fold - 1, self.k - fold + 1
        spent = self.total - left
        needed = max(self.total, spent / done * self.k) if done else self.total * 2
        what = (f"{max(budget, 0.0):.1f} s each is under the {minimum:.1f} s a fold needs "
                f"({MIN_FOLD_SHARE:g} of fold 1's {self.first:.1f} s)" if self.first is not None
                else "nothing is left for the first fold")
        return (f"train.time_budget: after {done} of {self.k} folds {max(left, 0.0):.1f} s of the "
                f"{self.total:.1f} s budget are left for {folds_left} more: {what}; give a longer "
                f"--time-budget (about {math.ceil(needed)}s) or fewer --cv folds")
