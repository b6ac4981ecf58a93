"""How `neuroclass compare` shares a time budget: each entry gets what is left (less the
comparison's finish) divided by the entries still to run, the classical families train first and
the networks last, so the networks share evenly what the classical fits left. The entries' training
is replaced by a stand-in that advances an injected clock: nothing trains here."""
from __future__ import annotations

from pathlib import Path

import pytest

from neuroclass.config import load_config
from neuroclass.tuning import compare as compare_mod
from neuroclass.tuning.compare import FINISH_SECONDS, CompareSettings, compare, entry_share, training_order
from neuroclass.tuning.compare_entries import parse_entries


class Clock:
    """Seconds that move only when the stand-in training says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_with(tmp_path, monkeypatch, models: str, budget: float, classical_seconds: float = 1.0):
    """compare() of ``models`` under ``budget`` seconds; a classical entry takes ``classical_seconds``,
    a network its whole share. Returns (rows in the order given, entry names in training order)."""
    clock, trained = Clock(), []

    def stand_in(settings, entry, cfg, folder, share, hooks):
        trained.append(entry.name)
        clock.now += classical_seconds if compare_mod.is_classical(entry.family) else share
        return {**compare_mod.base_row(entry, share), "val": 0.5, "run": entry.slug}

    monkeypatch.setattr(compare_mod, "_run_entry", stand_in)
    monkeypatch.setattr(compare_mod, "finish", lambda folder, settings, rows, partial=False:
                        (folder, Path(folder) / rows[0]["run"], rows, None))
    base = load_config(overrides=["data.source=blocks:n=64,size=8", f"out={tmp_path}", "train.quiet=true",
                                  f"train.time_budget={budget}"])
    result = compare(CompareSettings(base, parse_entries(models)), clock=clock, started=0.0)
    assert clock.now <= budget
    return result.rows, trained


def test_a_network_listed_first_gets_the_time_the_classical_entries_leave(tmp_path, monkeypatch):
    rows, trained = run_with(tmp_path, monkeypatch, "mlp,logreg,knn,random_forest,xgboost", 60.0)
    assert trained == ["logreg", "knn", "random_forest", "xgboost", "mlp"]
    assert [r["entry"] for r in rows] == ["mlp", "logreg", "knn", "random_forest", "xgboost"]  # as given
    shares = {r["entry"]: r["time_budget"] for r in rows}
    left = 60.0 - FINISH_SECONDS
    assert shares["logreg"] == pytest.approx(left / 5)
    assert shares["mlp"] == pytest.approx(left - 4 * 1.0)  # not a fifth: what the four fits left


def test_networks_share_the_rest_evenly(tmp_path, monkeypatch):
    rows, trained = run_with(tmp_path, monkeypatch, "mlp,logreg,cnn", 60.0)
    assert trained == ["logreg", "mlp", "cnn"]
    shares = {r["entry"]: r["time_budget"] for r in rows}
    assert shares["mlp"] == pytest.approx(shares["cnn"]) == pytest.approx((60.0 - FINISH_SECONDS - 1.0) / 2)


def test_without_a_budget_the_entries_train_in_the_order_given(tmp_path, monkeypatch):
    clock_entries = []
    monkeypatch.setattr(compare_mod, "_run_entry", lambda settings, entry, cfg, folder, share, hooks:
                        clock_entries.append((entry.name, share)) or
                        {**compare_mod.base_row(entry, share), "val": 0.5, "run": entry.slug})
    monkeypatch.setattr(compare_mod, "finish", lambda folder, settings, rows, partial=False:
                        (folder, Path(folder) / rows[0]["run"], rows, None))
    base = load_config(overrides=["data.source=blocks:n=64,size=8", f"out={tmp_path}", "train.quiet=true"])
    compare(CompareSettings(base, parse_entries("mlp,logreg")))
    assert clock_entries == [("mlp", None), ("logreg", None)]


def test_entry_share_and_training_order():
    assert entry_share(FINISH_SECONDS + 30.0, 3) == pytest.approx(10.0)
    assert entry_share(FINISH_SECONDS - 1.0, 2) < 0  # spent: the entry is recorded as not trained
    assert training_order(parse_entries("glassbox,svm,mlp,knn")) == [1, 3, 0, 2]
