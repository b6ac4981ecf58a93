"""The lightgbm family: LGBMClassifier with early stopping on the validation rows and a callback
that stops adding rounds once the deadline has passed. The fitted model kept is its
``lightgbm.Booster``, persisted in LightGBM's own text format (``model_to_string``) with one more
line, ``neuroclass_layout:{...}``, after its parameters, that says which of the task's classes the
model saw. LightGBM itself reads the text with that line in place (it stops at the end of its
parameters); ``load_lightgbm`` takes it out first all the same. lightgbm is imported inside the
functions, so that importing the registry stays cheap.
"""
from __future__ import annotations

import inspect
import json

import numpy as np

from neuroclass.classical.budget import LIBRARY_ROUNDS, Budget, FitData, StopReason, boosting_rounds, history_of
from neuroclass.errors import NeuroclassError

LAYOUT_KEY = "neuroclass_layout:"  # a line of the saved text: {"classes": K, "present": [...]}


def build_lightgbm(opts, seed: int, threads: int | None):
    """An LGBMClassifier; ``deterministic`` with column-wise histograms, so that a seed gives the
    same model at any thread count; bagging every round when ``subsample`` < 1."""
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=opts.n_estimators or LIBRARY_ROUNDS, learning_rate=opts.learning_rate, num_leaves=opts.num_leaves,
        min_child_samples=opts.min_child_samples, subsample=opts.subsample, subsample_freq=1,
        colsample_bytree=opts.colsample_bytree, reg_lambda=opts.reg_lambda,
        n_jobs=threads, random_state=seed, deterministic=True, force_col_wise=True, verbose=-1)


class DeadlineCallback:
    """A lightgbm callback that ends training after the round during which the deadline passed,
    keeping the best round on the validation log-loss so far (``loss``: its metric name)."""

    def __init__(self, budget: Budget, loss: str) -> None:
        self.budget, self.loss = budget, loss
        # after lightgbm's evaluation record (20) and early stopping (30), so that a round that ends
        # both is an early stop; an instance attribute, as lightgbm gives instances without one its own
        self.order = 40
        self.stopped = False
        self.best: tuple | None = None  # (iteration, loss, evaluation_result_list)

    def __call__(self, env) -> None:
        from lightgbm.callback import EarlyStopException

        for entry in env.evaluation_result_list:
            if entry[1] == self.loss and (self.best is None or entry[2] < self.best[1]):
                self.best = (env.iteration, entry[2], list(env.evaluation_result_list))
        if self.budget.spent():
            self.stopped = True
            iteration, _, results = self.best or (env.iteration, None, list(env.evaluation_result_list))
            raise EarlyStopException(iteration, results)


def fit_lightgbm(estimator, opts, data: FitData, budget: Budget):
    """Fit with early stopping on the validation log-loss (``opts.early_stopping_rounds``) when
    there are validation rows, stopping at the deadline -> (lightgbm.Booster, record part)."""
    import lightgbm

    loss, error = ("binary_logloss", "binary_error") if data.k == 2 else ("multi_logloss", "multi_error")
    deadline = DeadlineCallback(budget, loss)
    cap, cap_why = boosting_rounds(opts.n_estimators, budget, data.has_val)
    estimator.set_params(n_estimators=cap)
    callbacks = [deadline]
    if data.has_val:
        callbacks.append(lightgbm.early_stopping(opts.early_stopping_rounds, first_metric_only=True,
                                                 verbose=False))
    if not data.has_val:
        estimator.fit(data.x_train, data.y_train, eval_metric=[loss, error], callbacks=callbacks)
    elif "eval_X" in inspect.signature(estimator.fit).parameters:  # lightgbm >= 4.7
        estimator.fit(data.x_train, data.y_train, eval_X=data.x_val, eval_y=data.y_val,
                      eval_metric=[loss, error], callbacks=callbacks)
    else:
        estimator.fit(data.x_train, data.y_train, eval_set=[(data.x_val, data.y_val)],
                      eval_metric=[loss, error], callbacks=callbacks)
    booster = estimator.booster_
    log = estimator.evals_result_.get("valid_0", {})
    # with validation rows lightgbm keeps the rounds up to the best one: count the rounds evaluated
    rounds = len(log[loss]) if data.has_val else int(booster.current_iteration())
    part = {"rounds": rounds, "rounds_used": rounds, "stop_reason": StopReason.COMPLETE, "rounds_cap": cap_why,
            "early_stopping": "validation log-loss" if data.has_val else "off: no validation rows"}
    if deadline.stopped:
        part["stop_reason"] = StopReason.TIME_BUDGET
    elif rounds < cap:
        part["stop_reason"] = StopReason.EARLY_STOPPING
    if data.has_val:
        best = int(estimator.best_iteration_)  # a count of rounds: the best is round best - 1
        part.update(best_iteration=best - 1, rounds_used=best, history=history_of(log[loss], log[error]))
    elif deadline.stopped:
        part["rounds_used"] = int(booster.best_iteration)
    # a booster rebuilt from its text: what a loaded model is, so predictions match after a round trip
    return lightgbm.Booster(model_str=booster.model_to_string()), part


def proba_lightgbm(booster, x: np.ndarray) -> np.ndarray:
    """(N, k) probabilities; a binary booster's (N,) positive-class column becomes two columns.
    The booster keeps the rounds up to the best one (``model_to_string`` cuts there)."""
    p = np.asarray(booster.predict(x), dtype=np.float64)
    return np.column_stack([1.0 - p, p]) if p.ndim == 1 else p


def dump_lightgbm(booster, classes: int, present: np.ndarray) -> bytes:
    """LightGBM's model text with the layout line before its last line (``pandas_categorical:``)."""
    text = booster.model_to_string()
    cut = text.rfind("\npandas_categorical:")
    cut = len(text) if cut < 0 else cut
    line = "\n" + LAYOUT_KEY + json.dumps({"classes": int(classes), "present": [int(c) for c in present]})
    return (text[:cut] + line + text[cut:]).encode("utf-8")


def load_lightgbm(data: bytes):
    """-> (lightgbm.Booster, K, present classes) from ``dump_lightgbm`` bytes. NeuroclassError when
    the bytes are no LightGBM model text or lack the layout line."""
    import lightgbm

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NeuroclassError("model file: not LightGBM model text (not UTF-8)") from None
    lines = text.split("\n")
    found = [i for i, line in enumerate(lines) if line.startswith(LAYOUT_KEY)]
    if not found:
        raise NeuroclassError(f"model file: the LightGBM model text has no '{LAYOUT_KEY}' line "
                              "(the classes it predicts); it was not written by neuroclass")
    layout = json.loads(lines.pop(found[-1])[len(LAYOUT_KEY):])
    try:
        booster = lightgbm.Booster(model_str="\n".join(lines))
    except lightgbm.basic.LightGBMError as exc:
        raise NeuroclassError(f"model file: not LightGBM model text ({str(exc).splitlines()[0]})") from None
    return booster, int(layout["classes"]), np.asarray(layout["present"], dtype=np.int64)
