"""The scikit-learn families: their estimators and training loops.

scikit-learn is imported inside the functions, so that importing the registry stays cheap.
Families without rounds (logreg, svm, knn) fit once; the deadline cannot stop them part way.
random_forest grows its trees in chunks (``warm_start``) while time remains; hist_gb adds boosting
iterations in chunks the same way and stops early on the validation rows it is given
(``fit(X_val=..., y_val=...)``, scikit-learn >= 1.7), never on a fraction carved from training.
"""
from __future__ import annotations

import inspect
import math

import numpy as np

from neuroclass.classical.budget import Budget, FitData, StopReason, history_of
from neuroclass.errors import NeuroclassError

CALIBRATION_FOLDS = 5  # svm: Platt scaling fitted on cross-validated decisions (the library default)
CHUNKS = 10  # a forest or hist_gb checks the time budget after each tenth of its rounds


def build_logreg(opts, seed: int, threads: int | None):
    """LogisticRegression (multinomial, L2, lbfgs) after a StandardScaler when ``opts.scale``."""
    from sklearn.linear_model import LogisticRegression

    return _scaled(LogisticRegression(C=opts.C, max_iter=opts.max_iter, random_state=seed), opts.scale)


def build_svm(opts, seed: int, threads: int | None):
    """A support vector machine with Platt-scaled probabilities: CalibratedClassifierCV around
    LinearSVC (kernel linear) or SVC (kernel rbf), cross-validated sigmoid calibration with one
    final SVM (``ensemble=False``), as scikit-learn advises in place of ``SVC(probability=True)``."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC, LinearSVC

    if opts.kernel == "linear":
        svm = LinearSVC(C=opts.C, random_state=seed)
    else:
        svm = SVC(kernel="rbf", C=opts.C, gamma="scale" if opts.gamma is None else opts.gamma)
    calibrated = CalibratedClassifierCV(svm, method="sigmoid", cv=CALIBRATION_FOLDS, ensemble=False,
                                        n_jobs=threads)
    return _scaled(calibrated, opts.scale)


def build_knn(opts, seed: int, threads: int | None):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=opts.n_neighbors, weights=opts.weights, n_jobs=threads)


def build_random_forest(opts, seed: int, threads: int | None):
    """A RandomForestClassifier that starts with no trees (``fit_forest`` grows them)."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=opts.n_estimators, max_depth=opts.max_depth, min_samples_leaf=opts.min_samples_leaf,
        max_features=None if opts.max_features == "all" else opts.max_features,
        n_jobs=threads, random_state=seed, warm_start=True)


def build_hist_gb(opts, seed: int, threads: int | None):
    """A HistGradientBoostingClassifier that stops on the validation loss (``fit_hist_gb``)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=opts.learning_rate, max_iter=opts.max_iter, max_leaf_nodes=opts.max_leaf_nodes,
        l2_regularization=opts.l2_regularization, n_iter_no_change=opts.n_iter_no_change,
        scoring="loss", validation_fraction=None, random_state=seed, warm_start=True)


def _scaled(estimator, scale: bool):
    """``estimator`` after a StandardScaler (a Pipeline), or as it is."""
    if not scale:
        return estimator
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), estimator)


def fit_once(estimator, opts, data: FitData, budget: Budget):
    """Fit a family without rounds on the training rows -> (estimator, record part)."""
    estimator.fit(data.x_train, data.y_train)
    return estimator, {"stop_reason": StopReason.COMPLETE}


def fit_calibrated(estimator, opts, data: FitData, budget: Budget):
    """fit_once for svm, whose calibration splits every class into CALIBRATION_FOLDS folds.
    Raises NeuroclassError for a class with fewer training rows than that."""
    counts = np.bincount(data.y_train, minlength=data.k)
    if counts.min() < CALIBRATION_FOLDS:
        raise NeuroclassError(f"svm calibrates its probabilities by {CALIBRATION_FOLDS}-fold cross-validation: "
                              f"every class needs at least {CALIBRATION_FOLDS} training rows, and class "
                              f"{data.present[counts.argmin()]} has {counts.min()}; use another family "
                              "or more data")
    return fit_once(estimator, opts, data, budget)


def fit_knn(estimator, opts, data: FitData, budget: Budget):
    """fit_once for knn. Raises NeuroclassError when there are fewer training rows than neighbours."""
    if opts.n_neighbors > len(data.y_train):
        raise NeuroclassError(f"The 'model.options.n_neighbors' parameter must be <= the training rows "
                              f"({len(data.y_train)}). Got {opts.n_neighbors} instead.")
    return fit_once(estimator, opts, data, budget)


def fit_forest(estimator, opts, data: FitData, budget: Budget):
    """Grow ``opts.n_estimators`` trees in chunks (``warm_start``), stopping between chunks once the
    deadline has passed -> (forest, record part with the trees grown)."""
    total, step = opts.n_estimators, max(1, math.ceil(opts.n_estimators / CHUNKS))
    grown, reason = 0, StopReason.COMPLETE
    while grown < total:
        grown = min(total, grown + step)
        estimator.set_params(n_estimators=grown)
        estimator.fit(data.x_train, data.y_train)
        if grown < total and budget.spent():
            reason = StopReason.TIME_BUDGET
            break
    return estimator, {"rounds": grown, "rounds_used": grown, "stop_reason": reason,
                       "early_stopping": "none: more trees do not overfit a forest"}


def takes_external_validation() -> bool:
    """Whether this scikit-learn's HistGradientBoostingClassifier.fit takes X_val (>= 1.7)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return "X_val" in inspect.signature(HistGradientBoostingClassifier.fit).parameters


def fit_hist_gb(estimator, opts, data: FitData, budget: Budget):
    """Add boosting iterations in chunks (``warm_start``) until ``opts.max_iter``, the validation
    loss stops improving for ``opts.n_iter_no_change`` iterations, or the deadline passes.
    Without validation rows (or a scikit-learn that cannot take them) every iteration is fitted.
    -> (estimator, record part)."""
    part = {"early_stopping": "validation log-loss"}
    validation = {}
    if not data.has_val:
        part["early_stopping"] = "off: no validation rows"
    elif not takes_external_validation():
        part["early_stopping"] = "off: this scikit-learn's fit takes no X_val (needs >= 1.7)"
    else:
        validation = {"X_val": data.x_val, "y_val": data.y_val}
    estimator.set_params(early_stopping=bool(validation))
    total, step = opts.max_iter, max(1, math.ceil(opts.max_iter / CHUNKS))
    target, reason = 0, StopReason.COMPLETE
    while target < total:
        target = min(total, target + step)
        estimator.set_params(max_iter=target)
        estimator.fit(data.x_train, data.y_train, **validation)
        if estimator.n_iter_ < target:
            reason = StopReason.EARLY_STOPPING
            break
        if target < total and budget.spent():
            reason = StopReason.TIME_BUDGET
            break
    part.update(rounds=int(estimator.n_iter_), rounds_used=int(estimator.n_iter_), stop_reason=reason)
    if validation:
        # validation_score_[0] scores the model before the first tree; scores are -log-loss
        losses = [-float(s) for s in estimator.validation_score_[1:]]
        part["best_iteration"] = int(np.argmin(losses)) if losses else None
        part["history"] = history_of(losses)
    return estimator, part


def proba_sklearn(estimator, x: np.ndarray) -> np.ndarray:
    """(N, k) probabilities over the classes the estimator was trained on."""
    return estimator.predict_proba(x)
