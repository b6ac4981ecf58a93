"""The xgboost family: XGBClassifier (hist tree method) with early stopping on the validation rows
and a callback that stops adding rounds once the deadline has passed. Persisted in XGBoost's own
UBJSON format, with the class layout (which of the task's classes the model saw) as a booster
attribute. xgboost is imported inside the functions, so that importing the registry stays cheap.
"""
from __future__ import annotations

import json

import numpy as np

from neuroclass.classical.budget import LIBRARY_ROUNDS, Budget, FitData, StopReason, boosting_rounds, history_of
from neuroclass.errors import NeuroclassError

LAYOUT_ATTR = "neuroclass_layout"  # booster attribute: {"classes": K, "present": [...]}


def build_xgboost(opts, seed: int, threads: int | None):
    """An XGBClassifier without callbacks or evaluation settings (``fit_xgboost`` adds them and
    the number of rounds, which depends on the time budget)."""
    from xgboost import XGBClassifier

    return XGBClassifier(
        n_estimators=opts.n_estimators or LIBRARY_ROUNDS, learning_rate=opts.learning_rate, max_depth=opts.max_depth,
        subsample=opts.subsample, colsample_bytree=opts.colsample_bytree, reg_lambda=opts.reg_lambda,
        tree_method="hist", n_jobs=threads, random_state=seed, verbosity=0)


def deadline_callback(budget: Budget, stopped: list):
    """An xgboost TrainingCallback that ends training after the round during which the deadline
    passed, and appends True to ``stopped`` when it does."""
    from xgboost.callback import TrainingCallback

    class Deadline(TrainingCallback):
        def after_iteration(self, model, epoch: int, evals_log) -> bool:
            if budget.spent():
                stopped.append(True)
                return True
            return False

    return Deadline()


def fit_xgboost(estimator, opts, data: FitData, budget: Budget):
    """Fit with early stopping on the validation log-loss (``opts.early_stopping_rounds``) when
    there are validation rows, stopping at the deadline -> (XGBClassifier, record part)."""
    from xgboost.callback import EarlyStopping

    error, loss = ("error", "logloss") if data.k == 2 else ("merror", "mlogloss")
    stopped: list = []
    cap, cap_why = boosting_rounds(opts.n_estimators, budget, data.has_val)
    # early stopping first: xgboost asks the callbacks in order and stops at the first that says
    # stop, so a round that ends both still counts towards the best iteration
    callbacks = [EarlyStopping(rounds=opts.early_stopping_rounds, metric_name=loss, data_name="validation_0")
                 ] if data.has_val else []
    estimator.set_params(callbacks=callbacks + [deadline_callback(budget, stopped)], eval_metric=[error, loss],
                         n_estimators=cap)
    eval_set = [(data.x_val, data.y_val)] if data.has_val else None
    estimator.fit(data.x_train, data.y_train, eval_set=eval_set, verbose=False)
    estimator.callbacks = None  # the fitted model keeps no reference to the clock (set_params would
    # also re-configure the fitted booster)
    rounds = int(estimator.get_booster().num_boosted_rounds())
    part = {"rounds": rounds, "rounds_used": rounds, "stop_reason": StopReason.COMPLETE, "rounds_cap": cap_why,
            "early_stopping": "validation log-loss" if data.has_val else "off: no validation rows"}
    if stopped:
        part["stop_reason"] = StopReason.TIME_BUDGET
    elif rounds < cap:
        part["stop_reason"] = StopReason.EARLY_STOPPING
    if data.has_val:
        best = int(estimator.best_iteration)
        log = estimator.evals_result()["validation_0"]
        part.update(best_iteration=best, rounds_used=best + 1, history=history_of(log[loss], log[error]))
    return estimator, part


def proba_xgboost(estimator, x: np.ndarray) -> np.ndarray:
    """(N, k) probabilities from the rounds up to the best iteration (all rounds without one)."""
    return estimator.predict_proba(x)


def dump_xgboost(estimator, classes: int, present: np.ndarray) -> bytes:
    """A copy of the booster, with the class layout as an attribute, as UBJSON bytes
    (``save_raw("ubj")``; attributes such as best_iteration travel with it)."""
    booster = estimator.get_booster().copy()
    booster.set_attr(**{LAYOUT_ATTR: json.dumps({"classes": int(classes),
                                                 "present": [int(c) for c in present]})})
    return bytes(booster.save_raw("ubj"))


def load_xgboost(data: bytes):
    """-> (XGBClassifier, K, present classes) from ``dump_xgboost`` bytes. NeuroclassError when the
    bytes are no XGBoost model or lack the class layout."""
    from xgboost import XGBClassifier
    from xgboost.core import XGBoostError

    estimator = XGBClassifier()
    try:
        estimator.load_model(bytearray(data))
    except XGBoostError as exc:
        raise NeuroclassError(f"model file: not an XGBoost UBJSON model ({str(exc).splitlines()[0]})") from None
    layout = estimator.get_booster().attr(LAYOUT_ATTR)
    if layout is None:
        raise NeuroclassError(f"model file: the XGBoost model has no '{LAYOUT_ATTR}' attribute "
                              "(the classes it predicts); it was not written by neuroclass")
    layout = json.loads(layout)
    return estimator, int(layout["classes"]), np.asarray(layout["present"], dtype=np.int64)
