"""The scikit-learn families: their estimators and training loops.

scikit-learn is imported inside the functions, so that importing the registry stays cheap.
Families without rounds fit once and the deadline cannot stop them part way: logreg and svm fit on
as many training rows as the time left allows (row_budget.py); knn only stores its rows.
svm fits one SVM and Platt-scales its decisions on the validation rows (one SVM fit); without them,
by cross-validation on the training rows (CALIBRATION_FOLDS + 1 SVM fits).
random_forest grows its trees in chunks (``warm_start``) while time remains; hist_gb adds boosting
iterations in chunks the same way and stops early on the validation rows it is given
(``fit(X_val=..., y_val=...)``, scikit-learn >= 1.7), never on a fraction carved from training.
"""
from __future__ import annotations

import inspect
import math

import numpy as np

from neuroclass.classical.budget import LIBRARY_ROUNDS, Budget, FitData, StopReason, boosting_rounds, history_of
from neuroclass.classical.row_budget import DEFAULT_EXPONENT, LINEAR_EXPONENT, RowTask, fit_rows
from neuroclass.errors import NeuroclassError

# svm without validation rows: Platt scaling fitted on cross-validated decisions (the library default)
CALIBRATION_FOLDS = 5
# svm: the kernel cache of SVC, MB; scikit-learn's user guide advises 500-1000 rather than the
# default 200 for large problems (fewer kernel rows computed again; the fitted model is the same)
KERNEL_CACHE_MB = 1000
CHUNKS = 10  # a forest or hist_gb checks the time budget after each tenth of its rounds
# svm with kernel=linear and no C given: the C values tried, smallest first, on the validation rows.
# liblinear's own search for C goes the same way (Chu et al. 2015, "Warm start for parameter
# selection of linear classifiers"): a small C converges in a few passes, a large one on wide
# standardized features (HOG) can take minutes and rarely scores better.
LINEAR_C_PATH = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
SKLEARN_C = 1.0  # scikit-learn's default C
LINEAR_MAX_ITER = 5000  # liblinear's passes, at most (scikit-learn's 1000 stops short for C near 1)


def build_logreg(opts, seed: int, threads: int | None):
    """LogisticRegression (multinomial, L2, lbfgs) after a StandardScaler when ``opts.scale``."""
    from sklearn.linear_model import LogisticRegression

    return _scaled(LogisticRegression(C=opts.C, max_iter=opts.max_iter, random_state=seed), opts.scale)


def build_svm(opts, seed: int, threads: int | None):
    """A support vector machine with Platt-scaled probabilities: CalibratedClassifierCV around
    LinearSVC (kernel linear) or SVC (kernel rbf), cross-validated sigmoid calibration with one
    final SVM (``ensemble=False``), as scikit-learn advises in place of ``SVC(probability=True)``.
    ``fit_svm`` fits it so when there are no validation rows; with them, it fits the SVM alone
    and calibrates it on them instead."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC, LinearSVC

    c = SKLEARN_C if opts.C is None else opts.C
    if opts.kernel == "linear":  # the dual problem: fast for the small C the path starts from
        svm = LinearSVC(C=c, dual=True, max_iter=LINEAR_MAX_ITER, random_state=seed)
    else:
        svm = SVC(kernel="rbf", C=c, gamma="scale" if opts.gamma is None else opts.gamma,
                  cache_size=KERNEL_CACHE_MB)
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
        learning_rate=opts.learning_rate, max_iter=opts.max_iter or LIBRARY_ROUNDS, max_leaf_nodes=opts.max_leaf_nodes,
        l2_regularization=opts.l2_regularization, n_iter_no_change=opts.n_iter_no_change,
        scoring="loss", validation_fraction=None, random_state=seed, warm_start=True)


def _scaled(estimator, scale: bool):
    """``estimator`` after a StandardScaler (a Pipeline), or as it is."""
    if not scale:
        return estimator
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), estimator)


def _fitter(estimator, data: FitData):
    """fit(rows) -> a fresh copy of ``estimator`` fitted on those training rows."""
    from sklearn.base import clone

    def fit(rows: np.ndarray):
        if len(rows) == len(data.y_train):  # every row: no copy of the training rows
            return clone(estimator).fit(data.x_train, data.y_train)
        return clone(estimator).fit(data.x_train[rows], data.y_train[rows])

    return fit


def fit_logreg(estimator, opts, data: FitData, budget: Budget):
    """Fit logreg on as many training rows as the time left allows (lbfgs on tens of thousands of
    wide rows can take minutes) -> (estimator, record part)."""
    return fit_rows(RowTask(_fitter(estimator, data), lambda model, x: model.predict_proba(x),
                            lambda model: None, exponent=LINEAR_EXPONENT), data, budget)


def fit_svm(estimator, opts, data: FitData, budget: Budget):
    """Fit svm on as many training rows as the time left allows, its probabilities Platt-scaled on
    the validation rows (one SVM fit: ``CalibratedClassifierCV(FrozenEstimator(svm))``), or, when
    there are none or they miss a class, by CALIBRATION_FOLDS-fold cross-validation on the training
    rows -> (estimator, record part with ``calibration``). The validation rows the calibration
    predicts count with ``budget.predict_rows``.
    Raises NeuroclassError, without validation rows, for a class with fewer than CALIBRATION_FOLDS
    training rows."""
    from dataclasses import replace

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    missing = [] if not data.has_val else sorted(set(range(data.k)) - set(np.unique(data.y_val).tolist()))
    if data.has_val and not missing:
        svm, path = _without_calibration(estimator), {}
        fitter = _fitter(svm, data) if opts.kernel == "rbf" or opts.C is not None else _c_path_fitter(svm, data, path)
        task = RowTask(fitter, lambda model, x: model.decision_function(x), _support_vectors,
                       exponent=LINEAR_EXPONENT if opts.kernel == "linear" else DEFAULT_EXPONENT)
        fitted, part = fit_rows(task, data, replace(budget, predict_rows=budget.predict_rows + len(data.y_val)))
        calibrated = CalibratedClassifierCV(FrozenEstimator(fitted), method="sigmoid").fit(data.x_val, data.y_val)
        if path:
            part["C"] = {"chosen": path["chosen"], "val_accuracy": path["scores"],
                         "how": "C = " + ", ".join(f"{c:g}" for c in LINEAR_C_PATH) + " in that order, stopping at "
                                "the first that scores no better than the one before"}
        return calibrated, {**part, "calibration": f"sigmoid (Platt) on the {len(data.y_val):,} validation rows"}
    _check_calibration_folds(data)
    why = "no validation rows" if not missing else f"class {data.present[missing[0]]} has no validation row"
    task = RowTask(_fitter(estimator, data), lambda model, x: model.predict_proba(x), _support_vectors,
                   least_per_class=CALIBRATION_FOLDS,
                   exponent=LINEAR_EXPONENT if opts.kernel == "linear" else DEFAULT_EXPONENT)
    fitted, part = fit_rows(task, data, budget)
    return fitted, {**part, "calibration": f"sigmoid (Platt), {CALIBRATION_FOLDS}-fold cross-validated on the "
                                           f"training rows ({why})"}


def _c_path_fitter(svm, data: FitData, path: dict):
    """fit(rows) -> ``svm`` (a LinearSVC, maybe after a StandardScaler) fitted on those rows with the
    C of LINEAR_C_PATH that scores best on the validation rows, trying C smallest first and stopping
    at the first that scores no better than the one before. ``path`` receives the last call's
    {"chosen": C, "scores": {C: validation accuracy}}."""
    from sklearn.base import clone

    key = f"{svm.steps[-1][0]}__C" if hasattr(svm, "steps") else "C"
    x, y = data.x_train, data.y_train

    def fit(rows: np.ndarray):
        best, best_score, scores = None, -1.0, {}
        for c in LINEAR_C_PATH:
            model = clone(svm).set_params(**{key: c})
            model.fit(x, y) if len(rows) == len(y) else model.fit(x[rows], y[rows])
            scores[c] = float(model.score(data.x_val, data.y_val))
            if scores[c] <= best_score:
                break
            best, best_score = model, scores[c]
        path.update(chosen=max(scores, key=lambda c: (scores[c], -c)), scores=scores)
        return best

    return fit


def _without_calibration(estimator):
    """The svm family's estimator (``build_svm``) with the bare SVM in place of the calibrated one."""
    from sklearn.base import clone

    if hasattr(estimator, "steps"):  # after a StandardScaler
        name, calibrated = estimator.steps[-1]
        return clone(estimator).set_params(**{name: clone(calibrated.estimator)})
    return clone(estimator.estimator)


def _support_vectors(model) -> int | None:
    """The support vectors of an svm family model, fitted by ``fit_svm`` (None for LinearSVC)."""
    svm = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(svm, "calibrated_classifiers_"):  # cross-validated calibration: its final SVM
        svm = svm.calibrated_classifiers_[0].estimator
    support = getattr(svm, "support_", None)
    return None if support is None else int(support.size)


def _check_calibration_folds(data: FitData) -> None:
    """Cross-validated calibration splits every class into CALIBRATION_FOLDS folds. Raises
    NeuroclassError for a class with fewer training rows than that."""
    counts = np.bincount(data.y_train, minlength=data.k)
    if counts.min() < CALIBRATION_FOLDS:
        raise NeuroclassError(f"svm without validation rows calibrates its probabilities by {CALIBRATION_FOLDS}"
                              f"-fold cross-validation: every class needs at least {CALIBRATION_FOLDS} training "
                              f"rows, and class {data.present[counts.argmin()]} has {counts.min()}; give "
                              "validation rows (data.val_fraction > 0), use another family or more data")


def fit_knn(estimator, opts, data: FitData, budget: Budget):
    """Store the training rows for knn (all of them: its cost comes when it predicts, and the
    time budget does not shorten that). Raises NeuroclassError when there are fewer training rows
    than neighbours."""
    if opts.n_neighbors > len(data.y_train):
        raise NeuroclassError(f"The 'model.options.n_neighbors' parameter must be <= the training rows "
                              f"({len(data.y_train)}). Got {opts.n_neighbors} instead.")
    estimator.fit(data.x_train, data.y_train)
    return estimator, {"stop_reason": StopReason.COMPLETE,
                       "why": f"all {len(data.y_train):,} rows: knn's cost comes when it predicts, which the "
                              "time budget does not shorten"}


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
    """Add boosting iterations in chunks (``warm_start``) until ``opts.max_iter`` (budget.py
    ``boosting_rounds``), the validation loss stops improving for ``opts.n_iter_no_change``
    iterations, or the deadline passes. Chunks grow by half the iterations fitted so far (each refit
    bins the rows again), and never ask more than the time left affords at the measured seconds per
    iteration. Without validation rows (or a scikit-learn that cannot take them) every iteration is
    fitted; with them, the model kept is that of the iterations up to the best one (``_best_rounds``),
    as xgboost and lightgbm keep theirs. -> (estimator, record part)."""
    part = {"early_stopping": "validation log-loss"}
    validation = {}
    if not data.has_val:
        part["early_stopping"] = "off: no validation rows"
    elif not takes_external_validation():
        part["early_stopping"] = "off: this scikit-learn's fit takes no X_val (needs >= 1.7)"
    else:
        validation = {"X_val": data.x_val, "y_val": data.y_val}
    estimator.set_params(early_stopping=bool(validation))
    total, part["rounds_cap"] = boosting_rounds(opts.max_iter, budget, bool(validation))
    target, reason, started, per_round = 0, StopReason.COMPLETE, budget.clock(), None
    while target < total:
        target = _next_chunk(target, total, budget, per_round)
        estimator.set_params(max_iter=target)
        estimator.fit(data.x_train, data.y_train, **validation)
        per_round = (budget.clock() - started) / max(1, estimator.n_iter_)
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
        if losses:
            estimator = _best_rounds(estimator, data, part["best_iteration"] + 1, budget, per_round)
            part["rounds_used"] = int(estimator.n_iter_)
    return estimator, part


def _best_rounds(estimator, data: FitData, best: int, budget: Budget, per_round: float | None):
    """The model of the first ``best`` iterations of ``estimator``, as xgboost and lightgbm keep
    the rounds up to the best one: scikit-learn keeps the n_iter_no_change iterations after it,
    and cannot drop them, so the first ``best`` are fitted again (the same seed and bins give the
    same trees). ``estimator`` as it is when it has no more, or when the deadline leaves no time
    for the refit at ``per_round`` seconds an iteration."""
    from sklearn.base import clone

    if best >= estimator.n_iter_:
        return estimator
    if budget.deadline is not None and budget.clock() + best * (per_round or 0.0) > budget.deadline:
        return estimator
    refit = clone(estimator).set_params(max_iter=best, early_stopping=False, warm_start=False)
    return refit.fit(data.x_train, data.y_train)


def _next_chunk(done: int, total: int, budget: Budget, per_round: float | None) -> int:
    """The iteration count to fit up to next: a tenth of min(total, LIBRARY_ROUNDS) at first, then
    half of ``done`` more, at most what the time left affords at ``per_round`` seconds (>= 1).

    >>> _next_chunk(0, 10_000, Budget(None, lambda: 0.0), None)
    10
    >>> _next_chunk(40, 10_000, Budget(100.0, lambda: 90.0), per_round=2.0)
    45
    """
    step = max(1, math.ceil(min(total, LIBRARY_ROUNDS) / CHUNKS), done // 2)
    if budget.deadline is not None and per_round:
        step = min(step, max(1, int((budget.deadline - budget.clock()) / per_round)))
    return min(total, done + step)


def proba_sklearn(estimator, x: np.ndarray) -> np.ndarray:
    """(N, k) probabilities over the classes the estimator was trained on."""
    return estimator.predict_proba(x)
