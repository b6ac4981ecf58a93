"""The classical model families: name -> options, builder, training loop, default search space and
the format a fitted model is saved in.

Each family's options are a frozen dataclass whose fields carry their rules (``rule(...)``, as the
torch families' configs do), so that ``family_options`` checks a mapping the same way: an unknown
key fails with a did-you-mean, a bad value with "The 'model.options.C' parameter must be > 0. Got
-1.0 instead.". Defaults are the libraries' own, except where noted beside a field (the boosting families' rounds:
budget.boosting_rounds).

>>> CLASSICAL.names()
['hist_gb', 'knn', 'lightgbm', 'logreg', 'random_forest', 'svm', 'xgboost']
>>> family_options("knn", {"n_neighbors": 3}).n_neighbors
3
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from neuroclass.classical import lightgbm_family as lgbm
from neuroclass.classical import sklearn_families as sk
from neuroclass.classical import xgboost_family as xgb
from neuroclass.errors import NeuroclassError
from neuroclass.registry import Registry
from neuroclass.rules import build_dataclass, rule

SKOPS, XGBOOST_UBJ, LIGHTGBM_TEXT = "skops", "xgboost-ubj", "lightgbm-text"  # native formats

# a share of the rows or columns: > 0 and <= 1
SHARE = rule(gt=0, le=1)
RATE = rule(gt=0, le=1)  # a boosting learning rate


@dataclass(frozen=True)
class LogRegOptions:
    C: float = field(default=1.0, metadata=rule(gt=0))  # inverse L2 strength
    max_iter: int = field(default=100, metadata=rule(gt=0))  # lbfgs iterations
    scale: bool = True  # standardize each feature first (StandardScaler)


@dataclass(frozen=True)
class SVMOptions:
    kernel: str = field(default="rbf", metadata=rule(choices=("linear", "rbf")))
    # inverse regularisation strength; None: 1.0 for rbf (scikit-learn's default); for linear, the
    # best on the validation rows of C = 0.0001, 0.001, 0.01, 0.1, 1 tried in that order until one
    # scores no better than the one before (sklearn_families.LINEAR_C_PATH; 1.0 without validation rows)
    C: Optional[float] = field(default=None, metadata=rule(gt=0))
    # the rbf kernel's width; None: scikit-learn's "scale", 1 / (D * variance of x)
    gamma: Optional[float] = field(default=None, metadata=rule(gt=0))
    scale: bool = True  # standardize each feature first (StandardScaler)

    def validate(self) -> None:
        """gamma shapes the rbf kernel only; with kernel=linear it would silently do nothing."""
        if self.gamma is not None and self.kernel != "rbf":
            raise NeuroclassError(f"model.options.gamma applies only to kernel=rbf. Got kernel="
                                  f"{self.kernel!r}, gamma={self.gamma:g}; drop gamma or use kernel=rbf")


@dataclass(frozen=True)
class KNNOptions:
    n_neighbors: int = field(default=5, metadata=rule(gt=0))
    weights: str = field(default="uniform", metadata=rule(choices=("uniform", "distance")))


@dataclass(frozen=True)
class ForestOptions:
    n_estimators: int = field(default=100, metadata=rule(gt=0))  # trees
    max_depth: Optional[int] = field(default=None, metadata=rule(gt=0))  # None: grow until pure
    min_samples_leaf: int = field(default=1, metadata=rule(gt=0))
    # features tried at each split: sqrt(D), log2(D), or all D
    max_features: str = field(default="sqrt", metadata=rule(choices=("sqrt", "log2", "all")))


@dataclass(frozen=True)
class HistGBOptions:
    learning_rate: float = field(default=0.1, metadata=RATE)
    # boosting iterations (K trees each); None: until early stopping or the time budget when there
    # is one, else 100
    max_iter: Optional[int] = field(default=None, metadata=rule(gt=0))
    max_leaf_nodes: int = field(default=31, metadata=rule(ge=2))
    l2_regularization: float = field(default=0.0, metadata=rule(ge=0))
    # stop after this many iterations without a lower validation log-loss
    n_iter_no_change: int = field(default=10, metadata=rule(gt=0))


@dataclass(frozen=True)
class XGBoostOptions:
    # boosting rounds; None: until early stopping or the time budget when there is one, else 100
    n_estimators: Optional[int] = field(default=None, metadata=rule(gt=0))
    learning_rate: float = field(default=0.3, metadata=RATE)
    max_depth: int = field(default=6, metadata=rule(gt=0))
    subsample: float = field(default=1.0, metadata=SHARE)  # rows drawn for each tree
    colsample_bytree: float = field(default=1.0, metadata=SHARE)  # columns drawn for each tree
    reg_lambda: float = field(default=1.0, metadata=rule(ge=0))  # L2 on leaf weights
    # stop after this many rounds without a lower validation log-loss
    early_stopping_rounds: int = field(default=20, metadata=rule(gt=0))


@dataclass(frozen=True)
class LightGBMOptions:
    # boosting rounds; None: until early stopping or the time budget when there is one, else 100
    n_estimators: Optional[int] = field(default=None, metadata=rule(gt=0))
    learning_rate: float = field(default=0.1, metadata=RATE)
    num_leaves: int = field(default=31, metadata=rule(ge=2))
    min_child_samples: int = field(default=20, metadata=rule(gt=0))  # rows in a leaf, at least
    subsample: float = field(default=1.0, metadata=SHARE)  # rows drawn for each round
    colsample_bytree: float = field(default=1.0, metadata=SHARE)  # columns drawn for each tree
    reg_lambda: float = field(default=0.0, metadata=rule(ge=0))  # L2 on leaf weights
    # stop after this many rounds without a lower validation log-loss
    early_stopping_rounds: int = field(default=20, metadata=rule(gt=0))


@dataclass(frozen=True)
class ClassicalFamily:
    """A registered classical family.

    ``options``: its frozen options dataclass. ``build(options, seed, threads)``: an unfitted
    estimator (``threads``: n_jobs, None for the library's default). ``fit(estimator, options,
    FitData, Budget)``: -> (fitted model, record part: rounds, best_iteration, stop_reason, ...).
    ``proba(model, x)``: (N, k) probabilities over the k classes seen in training.
    ``space``: the default search space, in the ``--space`` YAML form over ``model.options.*``.
    ``native_format``: how a fitted model is saved (SKOPS, XGBOOST_UBJ or LIGHTGBM_TEXT).
    """

    name: str
    options: type
    summary: str
    build: Callable[[Any, int, Optional[int]], Any]
    fit: Callable[..., tuple]
    proba: Callable[[Any, np.ndarray], np.ndarray]
    space: dict
    native_format: str


CLASSICAL: Registry[ClassicalFamily] = Registry("classical model")


def _register(family: ClassicalFamily) -> None:
    CLASSICAL.register(family.name)(family)


def family_options(name: str, options: dict) -> Any:
    """The options dataclass of family ``name`` from a mapping (unknown keys get a did-you-mean).
    Raises NeuroclassError for an unknown family, key or value."""
    return build_dataclass(CLASSICAL.get(name).options, options, "model.options.")


def _log_range(low: float, high: float) -> dict:
    return {"low": low, "high": high, "log": True}


_register(ClassicalFamily(
    "logreg", LogRegOptions, "multinomial logistic regression (L2, lbfgs) on standardized features",
    sk.build_logreg, sk.fit_logreg, sk.proba_sklearn,
    {"model.options.C": _log_range(1e-3, 1e2)}, SKOPS))
_register(ClassicalFamily(
    "svm", SVMOptions, "support vector machine (linear or rbf), probabilities Platt-scaled on the validation "
    "rows; rbf fits in time about quadratic in the rows, on as many as the time budget allows",
    sk.build_svm, sk.fit_svm, sk.proba_sklearn,
    {"model.options.C": _log_range(1e-2, 1e2), "model.options.kernel": ["linear", "rbf"]}, SKOPS))
_register(ClassicalFamily(
    "knn", KNNOptions, "k nearest neighbours (Euclidean); predicting compares with every training row",
    sk.build_knn, sk.fit_knn, sk.proba_sklearn,
    {"model.options.n_neighbors": {"low": 1, "high": 30}, "model.options.weights": ["uniform", "distance"]},
    SKOPS))
_register(ClassicalFamily(
    "random_forest", ForestOptions, "random forest of decision trees, grown in chunks within the time budget",
    sk.build_random_forest, sk.fit_forest, sk.proba_sklearn,
    {"model.options.min_samples_leaf": {"low": 1, "high": 8},
     "model.options.max_features": ["sqrt", "log2"], "model.options.n_estimators": [100, 200, 400]},
    SKOPS))
_register(ClassicalFamily(
    "hist_gb", HistGBOptions, "scikit-learn histogram gradient boosting, early stopping on validation",
    sk.build_hist_gb, sk.fit_hist_gb, sk.proba_sklearn,
    {"model.options.learning_rate": _log_range(0.02, 0.3),
     "model.options.max_leaf_nodes": {"low": 7, "high": 63},
     "model.options.l2_regularization": {"low": 0.0, "high": 1.0}}, SKOPS))
_register(ClassicalFamily(
    "xgboost", XGBoostOptions, "XGBoost gradient-boosted trees (hist), early stopping on validation",
    xgb.build_xgboost, xgb.fit_xgboost, xgb.proba_xgboost,
    {"model.options.learning_rate": _log_range(0.02, 0.3), "model.options.max_depth": {"low": 3, "high": 10},
     "model.options.subsample": {"low": 0.5, "high": 1.0},
     "model.options.colsample_bytree": {"low": 0.5, "high": 1.0},
     "model.options.reg_lambda": _log_range(0.1, 10.0)}, XGBOOST_UBJ))
_register(ClassicalFamily(
    "lightgbm", LightGBMOptions, "LightGBM gradient-boosted trees (leaf-wise), early stopping on validation",
    lgbm.build_lightgbm, lgbm.fit_lightgbm, lgbm.proba_lightgbm,
    {"model.options.learning_rate": _log_range(0.02, 0.3), "model.options.num_leaves": {"low": 15, "high": 127},
     "model.options.min_child_samples": {"low": 5, "high": 50},
     "model.options.subsample": {"low": 0.5, "high": 1.0},
     "model.options.colsample_bytree": {"low": 0.5, "high": 1.0},
     "model.options.reg_lambda": _log_range(1e-3, 10.0)}, LIGHTGBM_TEXT))
