"""How `neuroclass compare` shares a time budget: each entry gets what is left (less the
comparison's finish) divided by the entries still to run; the classical families train first and
the networks last, so the networks share evenly what the classical fits left. Real fits on 160
coloured blocks (logreg, knn, MLPs for one epoch); the clock is injected and moves, after each
entry, by what the test says the entry took."""
from __future__ import annotations

import numpy as np
import pytest

from neuroclass.config import load_config
from neuroclass.data.blocks import make_blocks
from neuroclass.tuning.compare import FINISH_SECONDS, CompareSettings, compare, entry_share, training_order
from neuroclass.tuning.compare_entries import parse_entries

CLASSICAL_SECONDS = 1.0  # what each classical entry takes on the injected clock


class StepClock:
    """Seconds that creep (a microsecond a reading) and jump when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now


def compared(tmp_path, models: str, budget: float | None):
    """compare() of ``models``: a classical entry takes CLASSICAL_SECONDS, a network its whole
    share. Returns the rows (in the order given) and the entries in the order they trained."""
    data = tmp_path / "blocks.npz"
    ds = make_blocks(n=160, size=16, task="colour", seed=0)
    np.savez(data, x=ds.x.numpy(), y=ds.y.numpy())
    extra = [] if budget is None else [f"train.time_budget={budget}"]
    base = load_config(overrides=[f"data.source={data}", f"out={tmp_path / 'runs'}", "train.quiet=true",
                                  "train.epochs=1", "train.threads=1", *extra])
    clock, trained = StepClock(), []

    def took(row):
        trained.append(row["entry"])
        if budget is not None:
            clock.now += row["time_budget"] if row["entry"].startswith("mlp") else CLASSICAL_SECONDS

    result = compare(CompareSettings(base, parse_entries(models), report=False), clock=clock, started=0.0,
                     on_entry=took)
    assert budget is None or clock.now <= budget
    rows = {r["entry"]: r for r in result.rows}
    assert all(r["error"] is None for r in rows.values()), rows
    return rows, trained


def test_a_network_listed_first_gets_the_time_the_classical_entries_leave(tmp_path):
    rows, trained = compared(tmp_path, "mlp[hidden=[16]],logreg,knn", 60.0)
    assert trained == ["logreg", "knn", "mlp[hidden=[16]]"]
    left = 60.0 - FINISH_SECONDS
    assert rows["logreg"]["time_budget"] == pytest.approx(left / 3, abs=0.01)
    assert rows["knn"]["time_budget"] == pytest.approx((left - CLASSICAL_SECONDS) / 2, abs=0.01)
    # not a third of the budget: all that the two classical fits left
    assert rows["mlp[hidden=[16]]"]["time_budget"] == pytest.approx(left - 2 * CLASSICAL_SECONDS, abs=0.01)


def test_networks_share_the_rest_evenly(tmp_path):
    rows, trained = compared(tmp_path, "mlp[hidden=[16]],logreg,mlp[hidden=[8]]", 60.0)
    assert trained == ["logreg", "mlp[hidden=[16]]", "mlp[hidden=[8]]"]
    half = (60.0 - FINISH_SECONDS - CLASSICAL_SECONDS) / 2
    assert rows["mlp[hidden=[16]]"]["time_budget"] == pytest.approx(half, abs=0.01)
    assert rows["mlp[hidden=[8]]"]["time_budget"] == pytest.approx(half, abs=0.01)


def test_without_a_budget_the_entries_train_in_the_order_given(tmp_path):
    rows, trained = compared(tmp_path, "mlp[hidden=[8]],logreg", None)
    assert trained == ["mlp[hidden=[8]]", "logreg"]
    assert rows["logreg"]["time_budget"] is None


def test_entry_share_and_training_order():
    assert entry_share(FINISH_SECONDS + 30.0, 3) == pytest.approx(10.0)
    assert entry_share(FINISH_SECONDS - 1.0, 2) < 0  # spent: the entry is recorded as not trained
    assert training_order(parse_entries("glassbox,svm,mlp,knn")) == [1, 3, 0, 2]
