"""A cross-validation's time budget shared by its folds (tuning/cv_budget.py) and its use by
tuning/cv.py: shares recomputed after each fold, the per-fold overhead held back, and one clear
line when the folds left cannot have a useful share. Injected clocks; one real run on digits."""
from __future__ import annotations

import math

import pytest

from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError
from neuroclass.runs import RunFolder
from neuroclass.training.callbacks import Callback
from neuroclass.tuning.cv import cross_validate, fold_overhead
from neuroclass.tuning.cv_budget import MIN_FOLD_SHARE, FoldBudgets, fold_budget


class Clock:
    """Seconds that move only when a test moves them (``now``), plus ``step`` a reading."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now, self.step = now, 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def digits_config(out, *extra: str):
    """Digits, a 32-unit MLP, one epoch, one thread: a fold trains in about a second."""
    return load_config(overrides=["data.source=digits", "model.name=mlp", "model.options.hidden=[32]",
                                  f"out={out}", "train.epochs=1", "train.quiet=true", "train.threads=1",
                                  "train.batch_size=64", *extra])


# ----------------------------------------------------------------------------- FoldBudgets alone

def test_each_fold_gets_what_is_left_over_the_folds_left():
    clock = Clock()
    budgets = FoldBudgets(90.0, 3, clock)
    assert budgets.next_budget(1) == pytest.approx(30.0)
    clock.now += 10.0  # fold 1 used a third of its share: the rest goes to the folds after it
    assert budgets.next_budget(2) == pytest.approx(40.0)
    clock.now += 10.0
    assert budgets.next_budget(3) == pytest.approx(70.0)
    assert budgets.given == pytest.approx([30.0, 40.0, 70.0])


def test_a_first_fold_that_overruns_its_share_is_absorbed_by_the_rest():
    clock = Clock()
    budgets = FoldBudgets(20.0, 3, clock, start=clock.now)
    first = budgets.next_budget(1)
    clock.now += 12.0  # 20 / 3 = 6.7 s given, 12 s taken (a loaded machine)
    assert budgets.next_budget(2) == pytest.approx((20.0 - 12.0) / 2)
    clock.now += 4.0
    assert budgets.next_budget(3) == pytest.approx(4.0)
    assert first == pytest.approx(20.0 / 3)


def test_the_overhead_measured_on_a_fold_is_held_back_for_every_fold_left():
    clock = Clock()
    budgets = FoldBudgets(90.0, 3, clock)
    budgets.next_budget(1)
    clock.now += 30.0
    budgets.measured(3.0)  # writing and predicting after fold 1
    assert budgets.next_budget(2) == pytest.approx((60.0 - 2 * 3.0) / 2) == fold_budget(60.0, 2, 3.0)
    clock.now += 27.0
    budgets.measured(-0.5)  # never negative
    assert budgets.overhead == 0.0
    budgets.measured(1.0)  # fold 2's reading replaces fold 1's (which may hold one-time costs)
    assert budgets.next_budget(3) == pytest.approx(33.0 - 1.0)


def test_an_overhead_that_leaves_less_than_the_minimum_gives_the_minimum_while_it_fits():
    clock = Clock()
    budgets = FoldBudgets(20.0, 3, clock)
    first = budgets.next_budget(1)
    clock.now += 14.0
    budgets.measured(2.5)  # (6 - 2 * 2.5) / 2 = 0.5 s, under a fifth of 6.7 s; 6 s cover 2 x 1.3 s
    assert budgets.next_budget(2) == pytest.approx(MIN_FOLD_SHARE * first)


def test_too_little_left_for_the_folds_left_is_one_line_with_the_numbers_and_the_fix():
    clock = Clock()
    budgets = FoldBudgets(20.0, 3, clock)
    budgets.next_budget(1)  # 6.7 s; a useful fold has at least a fifth of it, 1.3 s
    clock.now += 18.0
    with pytest.raises(NeuroclassError) as info:
        budgets.next_budget(2)  # 2 s left for 2 folds: 1 s each
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith("train.time_budget: after 1 of 3 folds 2.0 s of the 20.0 s budget are left"), message
    assert "1.0 s each is under the 1.3 s a fold needs (0.2 of fold 1's 6.7 s)" in message, message
    assert message.endswith("give a longer --time-budget (about 54s) or fewer --cv folds"), message
    assert MIN_FOLD_SHARE == 0.2


def test_just_enough_left_for_the_folds_left_is_not_an_error():
    clock = Clock()
    budgets = FoldBudgets(20.0, 3, clock)
    budgets.next_budget(1)
    clock.now += 16.0  # 4 s for 2 folds: 2 s each, over a fifth of 6.7 s
    assert budgets.next_budget(2) == pytest.approx(2.0)


def test_a_budget_spent_before_the_first_fold_says_so():
    clock = Clock(now=1100.0)
    with pytest.raises(NeuroclassError, match=r"after 0 of 3 folds 0\.0 s of the 90\.0 s budget .* nothing is "
                                              r"left for the first fold; give a longer --time-budget"):
        FoldBudgets(90.0, 3, clock, start=1000.0).next_budget(1)


def test_fold_overhead_is_what_the_fold_took_outside_its_timed_run():
    assert fold_overhead(31.0, {"total_seconds": 30.0}, 4.0) == 5.0
    assert fold_overhead(31.0, {"total_seconds": 30.0}, 4.0, load=2.0) == 3.0  # the data loads once
    assert fold_overhead(30.0, {"total_seconds": 30.0}, 0.0) == 0.0
    assert fold_overhead(1.0, {"total_seconds": 1.5}, 0.2) == 0.0  # never negative


# ----------------------------------------------------------------------------- cross_validate

class SlowFirstFold(Callback):
    """Fold 1's training takes ``seconds`` more by ``clock``; after each fit every clock reading
    takes ``step`` (the fold's writing and predicting are then measured as overhead)."""

    def __init__(self, clock: Clock, seconds: float, step: float = 0.0) -> None:
        self.clock, self.seconds, self.step, self.fits = clock, seconds, step, 0

    def on_fit_start(self, state, model) -> None:
        self.clock.step = 0.0

    def on_fit_end(self, state, model) -> None:
        self.fits += 1
        self.clock.now += self.seconds if self.fits == 1 else 0.0
        self.clock.step = self.step


def test_a_first_fold_overrunning_its_third_does_not_fail_the_cross_validation(tmp_path):
    clock = Clock()
    result = cross_validate(digits_config(tmp_path / "runs", "train.time_budget=90"), 3,
                            callbacks=[SlowFirstFold(clock, 50.0)], clock=clock, started=clock.now)
    budgets = [f.budget for f in result.folds]
    # fold 1: 90 / 3, took 50; fold 2: (90 - 50) / 2; fold 3: what fold 2 left, about 40
    assert budgets == pytest.approx([30.0, 20.0, 40.0], abs=0.01)
    assert [RunFolder.open(f.path).config().train.time_budget for f in result.folds] == budgets


def test_the_overhead_outside_a_folds_budget_is_measured_and_held_back(tmp_path):
    clock = Clock()
    result = cross_validate(digits_config(tmp_path / "runs", "train.time_budget=90"), 3,
                            callbacks=[SlowFirstFold(clock, 50.0, step=1.0)], clock=clock, started=clock.now)
    first, second = result.folds[0], result.folds[1]
    assert first.overhead >= 1.0  # a second a clock reading after the run's timed part
    # fold 2's share: less than (90 - 50) / 2 by at least the overhead it holds back
    assert second.budget <= 20.0 - first.overhead + 1e-6
    assert all(math.isfinite(f.overhead) and f.overhead >= 0 for f in result.folds)


def test_a_first_fold_spending_nearly_all_the_budget_fails_with_the_fix(tmp_path):
    clock = Clock()
    with pytest.raises(NeuroclassError, match=r"after 1 of 3 folds .* fewer --cv folds$"):
        cross_validate(digits_config(tmp_path / "runs", "train.time_budget=90"), 3,
                       callbacks=[SlowFirstFold(clock, 86.0)], clock=clock, started=clock.now)
    assert not (tmp_path / "runs").exists()


def test_a_real_budgeted_cross_validation_passes_unused_time_on(tmp_path):
    # the real clock: each one-epoch fold ends far within its share, which goes to the folds after it
    result = cross_validate(digits_config(tmp_path / "runs", "train.time_budget=600"), 3)
    budgets = [f.budget for f in result.folds]
    assert len(budgets) == 3 and budgets[0] == pytest.approx(200.0, abs=1.0)
    assert budgets[0] < budgets[1] < budgets[2] < 600.0
    assert [RunFolder.open(f.path).config().train.time_budget for f in result.folds] == budgets
    assert all(f.overhead >= 0 for f in result.folds)
