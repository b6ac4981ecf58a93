"""The three boosting families (hist_gb, xgboost, lightgbm) record the same fields with the same
meaning: ``rounds`` fitted, ``best_iteration`` (0-based) on the validation log-loss, and
``rounds_used``, the rounds the kept model predicts with: up to the best one after early stopping."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer

from neuroclass.classical.budget import Budget, FitData
from neuroclass.classical.fitting import fit_classical, predict_proba
from neuroclass.classical.sklearn_families import _best_rounds

FIELDS = {"family", "rounds", "rounds_used", "best_iteration", "stop_reason", "rounds_cap", "early_stopping",
          "history"}


@pytest.fixture(scope="module")
def cancer():
    """Training and validation rows on which each family stops early, some rounds after its best."""
    x, y = load_breast_cancer(return_X_y=True)
    x, y = x.astype(np.float32), y.astype(np.int64)
    return x[:400], y[:400], x[400:], y[400:]


@pytest.mark.parametrize("name", ["hist_gb", "xgboost", "lightgbm"])
def test_each_boosting_family_keeps_and_records_the_rounds_up_to_its_best(name, cancer):
    pytest.importorskip({"hist_gb": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm"}[name])
    x, y, xv, yv = cancer
    options = {"max_iter": 200} if name == "hist_gb" else {"n_estimators": 200}
    fitted = fit_classical(name, options, x, y, xv, yv, classes=2, seed=0, threads=1, deadline=None)
    record = fitted.record
    assert FIELDS <= set(record)
    assert record["stop_reason"] == "early_stopping" and record["rounds"] > record["best_iteration"] + 1
    assert record["rounds_used"] == record["best_iteration"] + 1
    losses = record["history"]["val_log_loss"]
    assert len(losses) == record["rounds"] and int(np.argmin(losses)) == record["best_iteration"]


def test_hist_gb_predicts_with_its_best_rounds_as_fitted_in_the_first_place(cancer):
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y, xv, yv = cancer
    fitted = fit_classical("hist_gb", {"max_iter": 200}, x, y, xv, yv, classes=2, seed=0, threads=1, deadline=None)
    best = fitted.record["best_iteration"]
    assert fitted.estimator.n_iter_ == best + 1
    every = HistGradientBoostingClassifier(max_iter=fitted.record["rounds"], early_stopping=False, random_state=0,
                                           **{k: fitted.estimator.get_params()[k] for k in
                                              ("learning_rate", "max_leaf_nodes", "l2_regularization")}).fit(x, y)
    staged = list(every.staged_predict_proba(xv))[best]  # the model of every round, stopped at the best
    assert np.allclose(predict_proba(fitted, xv), staged, atol=1e-12)


def test_hist_gb_keeps_every_round_when_the_deadline_leaves_no_time_to_refit(cancer):
    x, y, xv, yv = cancer
    fitted = fit_classical("hist_gb", {"max_iter": 200}, x, y, xv, yv, classes=2, seed=0, threads=1, deadline=None)
    every = clone(fitted.estimator).set_params(max_iter=fitted.record["rounds"], warm_start=False,
                                               early_stopping=False).fit(x, y)  # every round, as fitted
    data = FitData(x, y, xv, yv, np.array([0, 1]), 2)
    best = fitted.record["best_iteration"] + 1
    # 0.9 s of 1 s gone, 10 ms an iteration: the best rounds would not be fitted again in time
    assert _best_rounds(every, data, best, Budget(1.0, lambda: 0.9), per_round=0.01) is every
    assert _best_rounds(every, data, best, Budget(1.0, lambda: 0.1), per_round=0.001).n_iter_ == best
    assert _best_rounds(every, data, every.n_iter_, Budget(None, lambda: 0.0), per_round=None) is every
