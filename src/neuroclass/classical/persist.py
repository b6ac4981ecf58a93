"""Save and load fitted classical models without pickle, each in its library's own format:
XGBoost's UBJSON, LightGBM's model text, and scikit-learn estimators through skops.io.

skops loads only the types it is told to trust: the estimators of the scikit-learn families and
the parts they are made of (``TRUSTED``); a file holding any other type is refused before anything
in it is built.

>>> import numpy as np
>>> from neuroclass.classical.fitting import fit_classical, predict_proba
>>> x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32); y = (x[:, 0] > 0).astype(np.int64)
>>> fitted = fit_classical("knn", {}, x, y, None, None, classes=2, seed=0, threads=1, deadline=None)
>>> data, fmt = dump_fitted(fitted)
>>> fmt
'skops'
>>> bool((predict_proba(load_fitted(data, fmt, "knn"), x) == predict_proba(fitted, x)).all())
True
"""
from __future__ import annotations

import numpy as np

from neuroclass.classical import lightgbm_family as lgbm
from neuroclass.classical import xgboost_family as xgb
from neuroclass.classical.families import CLASSICAL, LIGHTGBM_TEXT, XGBOOST_UBJ, family_options
from neuroclass.classical.fitting import FittedClassical
from neuroclass.errors import NeuroclassError, with_article

# The types skops reports as untrusted in the scikit-learn families' estimators (skops itself
# trusts builtins, NumPy arrays and scikit-learn's public estimators, svm's FrozenEstimator among
# them); a file naming any other type is refused.
TRUSTED = (
    "sklearn.calibration._CalibratedClassifier",  # svm: the fitted SVM and its calibrators
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # hist_gb: one tree
    "sklearn.metrics._dist_metrics.EuclideanDistance64",  # knn on few features: its k-d tree
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.tree._tree.Tree",  # random_forest: one tree
)


def dump_fitted(fitted: FittedClassical) -> tuple[bytes, str]:
    """A fitted model as (bytes, format name): the family's native format (``ClassicalFamily.
    native_format``), with the task's number of classes and the classes seen in training."""
    fmt = CLASSICAL.get(fitted.family).native_format
    if fmt == XGBOOST_UBJ:
        return xgb.dump_xgboost(fitted.estimator, fitted.classes, fitted.present), fmt
    if fmt == LIGHTGBM_TEXT:
        return lgbm.dump_lightgbm(fitted.estimator, fitted.classes, fitted.present), fmt
    from skops.io import dumps

    return dumps({"estimator": fitted.estimator, "classes": int(fitted.classes),
                  "present": [int(c) for c in fitted.present]}), fmt


def load_fitted(data: bytes, fmt: str, name: str) -> FittedClassical:
    """The model ``dump_fitted`` gave as (``data``, ``fmt``), of family ``name``. Its record holds
    only ``family``. Raises NeuroclassError for an unknown family, a format that is not the
    family's, bytes that are no such model, or (skops) a type outside ``TRUSTED``, naming it."""
    family = CLASSICAL.get(name)
    if fmt != family.native_format:
        raise NeuroclassError(f"model file: format '{fmt}' is not the {name} family's "
                              f"('{family.native_format}')")
    if fmt == XGBOOST_UBJ:
        estimator, classes, present = xgb.load_xgboost(bytes(data))
    elif fmt == LIGHTGBM_TEXT:
        estimator, classes, present = lgbm.load_lightgbm(bytes(data))
    else:
        estimator, classes, present = _load_skops(bytes(data), name)
    return FittedClassical(name, estimator, classes, present, {"family": name})


def _load_skops(data: bytes, name: str):
    """-> (estimator, K, present) from skops bytes, loading only TRUSTED types."""
    from skops.io import get_untrusted_types, loads

    try:
        untrusted = get_untrusted_types(data=data)
    except Exception as exc:  # skops raises zipfile, JSON and key errors alike for a foreign file
        raise NeuroclassError(f"model file: not a skops file of {with_article(name)} model ({exc})") from None
    refused = [t for t in untrusted if t not in TRUSTED]
    if refused:
        raise NeuroclassError(f"model file: refusing to load type '{refused[0]}' (not one of the "
                              f"types the scikit-learn families are made of); the file was not "
                              f"written by neuroclass or has been changed")
    loaded = loads(data, trusted=untrusted)
    if not isinstance(loaded, dict) or set(loaded) != {"estimator", "classes", "present"}:
        raise NeuroclassError(f"model file: the skops file holds no {name} model written by neuroclass")
    expected = CLASSICAL.get(name).build(family_options(name, {}), 0, None)
    if type(_final(loaded["estimator"])) is not type(_final(expected)):
        raise NeuroclassError(f"model file: holds {with_article(type(_final(loaded['estimator'])).__name__)}, "
                              f"not the {name} family's {type(_final(expected)).__name__}")
    return loaded["estimator"], int(loaded["classes"]), np.asarray(loaded["present"], dtype=np.int64)


def _final(estimator):
    """The last step of a Pipeline (the classifier after the scaler), or the estimator itself."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator
