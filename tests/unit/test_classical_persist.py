"""Saving and loading fitted classical models in their native formats: identical probabilities
after a round trip, the class layout kept, and files that are refused."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

from neuroclass.classical import CLASSICAL, dump_fitted, fit_classical, load_fitted, predict_proba
from neuroclass.classical.families import LIGHTGBM_TEXT, SKOPS, XGBOOST_UBJ
from neuroclass.errors import NeuroclassError

SMALL = {
    "logreg": {"max_iter": 300},
    "svm": {"kernel": "linear"},
    "knn": {},
    "random_forest": {"n_estimators": 10},
    "hist_gb": {"max_iter": 10},
    "xgboost": {"n_estimators": 10, "max_depth": 3},
    "lightgbm": {"n_estimators": 10, "num_leaves": 7, "min_child_samples": 5},
}
FORMATS = {"xgboost": XGBOOST_UBJ, "lightgbm": LIGHTGBM_TEXT}


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(1).permutation(len(y))[:700]
    return (x[order] / 16).astype(np.float32), y[order].astype(np.int64)


def fit(name, digits, drop=None, options=None):
    x, y = digits
    train = np.arange(500) if drop is None else np.flatnonzero(y[:500] != drop)
    return fit_classical(name, {**SMALL[name], **(options or {})}, x[train], y[train], x[500:600], y[500:600],
                         classes=10, seed=0, threads=1, deadline=None)


def test_every_family_is_tested():
    assert sorted(SMALL) == CLASSICAL.names()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_round_trip_gives_identical_probabilities(name, digits):
    fitted = fit(name, digits)
    data, fmt = dump_fitted(fitted)
    assert isinstance(data, bytes) and fmt == FORMATS.get(name, SKOPS) == CLASSICAL.get(name).native_format
    loaded = load_fitted(data, fmt, name)
    x_test = digits[0][600:]
    assert loaded.family == name and loaded.classes == 10
    assert np.array_equal(predict_proba(loaded, x_test), predict_proba(fitted, x_test))


@pytest.mark.parametrize("name", ["logreg", "xgboost", "lightgbm"])
def test_round_trip_keeps_a_missing_class_at_zero(name, digits):
    fitted = fit(name, digits, drop=7)
    loaded = load_fitted(*dump_fitted(fitted), name)
    x_test = digits[0][600:]
    proba = predict_proba(loaded, x_test)
    assert list(loaded.present) == [c for c in range(10) if c != 7] and (proba[:, 7] == 0).all()
    assert np.array_equal(proba, predict_proba(fitted, x_test))


def test_an_early_stopped_booster_predicts_with_its_best_rounds_after_loading(digits):
    fitted = fit("xgboost", digits, options={"n_estimators": 200, "learning_rate": 1.0, "max_depth": 8,
                                             "early_stopping_rounds": 3})
    assert fitted.record["rounds_used"] < fitted.record["rounds"]
    loaded = load_fitted(*dump_fitted(fitted), "xgboost")
    x_test = digits[0][600:]
    assert np.array_equal(predict_proba(loaded, x_test), predict_proba(fitted, x_test))


class Sneaky:
    """A type no family is made of."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_skops_refuses_a_type_outside_the_trusted_list():
    from skops.io import dumps

    data = dumps({"estimator": Sneaky(), "classes": 2, "present": [0, 1]})
    with pytest.raises(NeuroclassError, match=r"refusing to load type '[\w.]*Sneaky'"):
        load_fitted(data, SKOPS, "logreg")


def test_skops_refuses_an_estimator_made_of_types_outside_the_trusted_list():
    from sklearn.gaussian_process import GaussianProcessClassifier
    from skops.io import dumps

    x = np.random.default_rng(0).normal(size=(30, 3))
    model = GaussianProcessClassifier().fit(x, (x[:, 0] > 0).astype(int))
    data = dumps({"estimator": model, "classes": 2, "present": [0, 1]})
    with pytest.raises(NeuroclassError, match=r"refusing to load type 'sklearn\.gaussian_process\."):
        load_fitted(data, SKOPS, "logreg")


def test_skops_refuses_a_trusted_estimator_of_another_family(digits):
    data, fmt = dump_fitted(fit("knn", digits))
    with pytest.raises(NeuroclassError, match="holds a KNeighborsClassifier, not the logreg family's"):
        load_fitted(data, fmt, "logreg")


def test_a_format_that_is_not_the_familys_is_refused(digits):
    data, _ = dump_fitted(fit("knn", digits))
    with pytest.raises(NeuroclassError, match="format 'skops' is not the xgboost family's"):
        load_fitted(data, SKOPS, "xgboost")


@pytest.mark.parametrize("name", ["logreg", "xgboost", "lightgbm"])
def test_bytes_that_are_no_model_are_refused(name):
    with pytest.raises(NeuroclassError, match="model file"):
        load_fitted(b"not a model at all", CLASSICAL.get(name).native_format, name)
