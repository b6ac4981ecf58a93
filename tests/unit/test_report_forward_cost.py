"""The report's price of a forward pass: timed apart from the overhead of each call and from a first
call's one-off costs, so that a tiny evaluation set is not priced as if every example paid them.
A fake model moves a fake clock; no assertion reads real time."""
from __future__ import annotations

import pytest
import torch

from neuroclass.evaluation.report.costs import (IMPORTANCE_FIXED, PROBE_TIMES, ReportSizes, forward_seconds,
                                                measure_forward, probe_rows, report_parts, time_box)
from neuroclass.evaluation.report.importance import COPY_PER_VALUE, REPEATS
from neuroclass.evaluation.report.inputs import load_inputs
from neuroclass.evaluation.report.timebox import TimeBox

FIRST, CALL, EXAMPLE = 0.05, 1e-4, 1e-5  # the fake model's seconds: first call's extra, per call, per row


class FakeClock:
    """Seconds that move only when the fake model (or the test) moves them; ``tick`` more at each
    reading."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


class FakeModel:
    """A forward pass that costs CALL + EXAMPLE a row on ``clock``, and FIRST more on its first call;
    ``busy`` calls (counted from 0) cost ``load`` more, as when another process takes the CPU."""

    def __init__(self, clock: FakeClock, busy: tuple[int, ...] = (), load: float = 0.0) -> None:
        self.clock, self.busy, self.load, self.rows = clock, busy, load, []

    def __call__(self, x: torch.Tensor) -> None:
        self.clock.now += CALL + EXAMPLE * len(x) + (FIRST if not self.rows else 0.0)
        self.clock.now += self.load if len(self.rows) in self.busy else 0.0
        self.rows.append(len(x))


def test_the_cost_is_split_into_calls_and_examples_without_the_first_call():
    clock = FakeClock()
    model = FakeModel(clock, busy=(1 + PROBE_TIMES,), load=0.02)  # the first call of 36 rows, under load
    cost = measure_forward(model, torch.zeros(36, 13), clock, rows=64)
    assert model.rows == [1] + [1] * PROBE_TIMES + [36] * PROBE_TIMES  # a warm-up call, then each size
    assert cost.example == pytest.approx(EXAMPLE) and cost.call == pytest.approx(CALL)


def test_nothing_is_measured_on_one_example_or_by_a_clock_that_does_not_move():
    clock = FakeClock()
    assert measure_forward(FakeModel(clock), torch.zeros(1, 13), clock) is None
    still = FakeClock()
    assert measure_forward(lambda x: None, torch.zeros(36, 13), still) is None
    # the larger call is sized to the recorded speed: PROBE_TIMES (5) calls of it in PROBE_SECONDS (0.05 s)
    assert [probe_rows(s) for s in (1e-6, 1e-3, 1.0)] == [64, 10, 2]


def test_a_tiny_evaluation_set_is_priced_by_its_calls_not_by_the_first_one():
    # a table of 13 features and 36 evaluated rows, as small as a penguins test split
    sizes = ReportSizes("table", (13,), 3, train=128, val=14, evaluated=36)
    importance = next(p for p in report_parts(sizes) if p.name == "importance")
    clock = FakeClock()
    model = FakeModel(clock)
    measured = measure_forward(model, torch.zeros(36, 13), clock)
    # what the run's test pass recorded: its one call on the 36 rows, the first call's cost included
    recorded = forward_seconds({"test_seconds": FIRST + CALL + 36 * EXAMPLE}, "none", 36)
    assert recorded == pytest.approx(FIRST / 36 + CALL / 36 + EXAMPLE)
    shuffles = 13 * (REPEATS + 1 / 13)  # calls of the model: REPEATS a feature, one for the baseline
    expected = (IMPORTANCE_FIXED + 13 * COPY_PER_VALUE * 36 * (13 + REPEATS)
                + shuffles * (CALL + 36 * EXAMPLE))
    assert importance.seconds(13, measured.example, measured.call) == pytest.approx(expected)
    assert expected < 0.1 < 3.0 < importance.seconds(13, recorded)  # ~0.08 s, not ~3.4 s
    # under a deadline 1 s away the analysis now runs, where the recorded pass skipped it
    now = TimeBox([importance], deadline=1.0, clock=FakeClock(), forward=measured.example, call=measured.call)
    before = TimeBox([importance], deadline=1.0, clock=FakeClock(), forward=recorded)
    assert now.decide("importance").run == "full" and before.decide("importance").run == "skip"


def test_the_report_times_the_runs_model_with_its_clock_or_else_uses_the_test_pass(trained_run):
    inputs = load_inputs(trained_run.path)
    # each reading of this clock is a quarter second later: every timed call takes 0.25 s whatever
    # its size, so all of it is the call's cost
    timed = time_box(inputs, clock=FakeClock(0.25))
    assert (timed.forward, timed.call) == (0.0, 0.25)
    # a clock that does not move measures nothing: the run's test pass prices the examples
    still = time_box(inputs, clock=FakeClock())
    tested = len(inputs.indices["test"])
    assert (still.forward, still.call) == (forward_seconds(inputs.timing, inputs.predictor.policy.tta, tested), 0.0)
