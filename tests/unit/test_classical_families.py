"""Every classical family on a slice of scikit-learn's digits: accuracy, probabilities, determinism,
early stopping on the validation rows, the time budget (a fake clock), a class missing from
training, and the option checks."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

from neuroclass.classical import CLASSICAL, StopReason, family_options, fit_classical, predict_proba
from neuroclass.errors import NeuroclassError
from neuroclass.rules import build_dataclass

# small settings that still learn digits well
SMALL = {
    "logreg": {"max_iter": 300},
    "svm": {},
    "knn": {"n_neighbors": 3},
    "random_forest": {"n_estimators": 40},
    "hist_gb": {"max_iter": 40, "max_leaf_nodes": 15},
    "xgboost": {"n_estimators": 40, "max_depth": 4},
    "lightgbm": {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 5},
}
ROUNDS = {"random_forest": "n_estimators", "hist_gb": "max_iter", "xgboost": "n_estimators",
          "lightgbm": "n_estimators"}
BOOSTING = ("hist_gb", "xgboost", "lightgbm")


@pytest.fixture(scope="module")
def digits():
    """(x_train, y_train, x_val, y_val, x_test, y_test): 800 / 300 / 400 rows, 64 pixels in [0, 1]."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))[:1500]
    x, y = (x[order] / 16).astype(np.float32), y[order].astype(np.int64)
    return x[:800], y[:800], x[800:1100], y[800:1100], x[1100:], y[1100:]


def fit(name, digits, options=None, seed=0, deadline=None, clock=None, drop=None):
    x, y, xv, yv, _, _ = digits
    if drop is not None:
        x, y = x[y != drop], y[y != drop]
    extra = {"clock": clock} if clock else {}
    return fit_classical(name, {**SMALL[name], **(options or {})}, x, y, xv, yv, classes=10, seed=seed,
                         threads=1, deadline=deadline, **extra)


@pytest.fixture(scope="module")
def fitted(digits):
    return {name: fit(name, digits) for name in SMALL}


def test_every_family_is_tested():
    assert sorted(SMALL) == CLASSICAL.names()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_family_learns_digits_with_valid_probabilities(name, digits, fitted):
    x_test, y_test = digits[4], digits[5]
    proba = predict_proba(fitted[name], x_test)
    assert proba.shape == (len(y_test), 10) and proba.dtype == np.float64
    assert np.allclose(proba.sum(axis=1), 1.0) and (proba >= 0).all()
    assert (proba.argmax(axis=1) == y_test).mean() >= 0.85
    record = fitted[name].record
    assert record["family"] == name and record["classes_missing"] == []
    assert record["stop_reason"] in {r.value for r in StopReason}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_gives_the_same_model(name, digits, fitted):
    again = fit(name, digits)
    x_test = digits[4]
    assert np.array_equal(predict_proba(again, x_test), predict_proba(fitted[name], x_test))


@pytest.mark.parametrize("name", sorted(ROUNDS))
def test_rounds_are_recorded(name, fitted):
    record = fitted[name].record
    assert 1 <= record["rounds_used"] <= record["rounds"] <= SMALL[name][ROUNDS[name]]


@pytest.mark.parametrize("name", BOOSTING)
def test_boosting_records_the_validation_history(name, fitted):
    record = fitted[name].record
    losses = record["history"]["val_log_loss"]
    assert len(losses) == record["rounds"]
    assert record["best_iteration"] == int(np.argmin(losses))
    if name != "hist_gb":  # scikit-learn scores the loss only
        assert len(record["history"]["val_accuracy"]) == len(losses)
        assert record["rounds_used"] == record["best_iteration"] + 1


# settings that overfit digits within a few rounds: big steps, deep trees, little patience
OVERFIT = {
    "hist_gb": {"learning_rate": 1.0, "max_iter": 300, "max_leaf_nodes": 63, "n_iter_no_change": 3},
    "xgboost": {"learning_rate": 1.0, "n_estimators": 300, "max_depth": 10, "early_stopping_rounds": 3},
    "lightgbm": {"learning_rate": 1.0, "n_estimators": 300, "num_leaves": 63, "min_child_samples": 2,
                 "early_stopping_rounds": 3},
}


@pytest.mark.parametrize("name", BOOSTING)
def test_boosting_stops_early_on_the_validation_loss(name, digits):
    record = fit(name, digits, OVERFIT[name]).record
    assert record["stop_reason"] == "early_stopping"
    assert record["best_iteration"] < record["rounds"] < 300
    assert record["early_stopping"] == "validation log-loss"


class JumpingClock:
    """A fake clock: 0 for its first ``calls`` readings, then 1000 (past any deadline below it)."""

    def __init__(self, calls: int) -> None:
        self.calls, self.readings = calls, 0

    def __call__(self) -> float:
        self.readings += 1
        return 0.0 if self.readings <= self.calls else 1000.0


@pytest.mark.parametrize("name", sorted(ROUNDS))
def test_deadline_stops_adding_rounds(name, digits):
    total = {"random_forest": 100, "hist_gb": 100, "xgboost": 100, "lightgbm": 100}[name]
    fitted = fit(name, digits, {ROUNDS[name]: total}, deadline=10.0, clock=JumpingClock(4))
    record = fitted.record
    assert record["stop_reason"] == "time_budget"
    assert 1 <= record["rounds"] < total
    assert record["fit_seconds"] == 1000.0  # the fake clock's reading, not wall time
    if name in BOOSTING:  # the round the deadline ended was evaluated and counts towards the best
        losses = record["history"]["val_log_loss"]
        assert len(losses) == record["rounds"] and record["best_iteration"] == int(np.argmin(losses))
    proba = predict_proba(fitted, digits[4])
    assert np.allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", sorted(ROUNDS))
def test_no_deadline_fits_every_round_asked_for(name, digits):
    fitted = fit(name, digits, {ROUNDS[name]: 5}, deadline=None, clock=JumpingClock(0))
    assert fitted.record["stop_reason"] == "complete" and fitted.record["rounds"] == 5


def auto_rounds(name, digits, deadline, clock):
    """Fit ``name`` without a number of rounds, slowly enough that 100 rounds do not converge."""
    options = {k: v for k, v in SMALL[name].items() if k != ROUNDS[name]}
    options["learning_rate"] = 0.03
    x, y, xv, yv, _, _ = digits
    return fit_classical(name, options, x, y, xv, yv, classes=10, seed=0, threads=1, deadline=deadline,
                         clock=clock).record


@pytest.mark.parametrize("name", BOOSTING)
def test_under_a_time_budget_boosting_adds_rounds_past_the_library_default(name, digits):
    record = auto_rounds(name, digits, deadline=10.0, clock=JumpingClock(180))
    assert record["rounds"] > 100  # the libraries' default would have stopped at 100
    assert record["stop_reason"] in ("time_budget", "early_stopping")
    assert record["rounds_cap"] == "until early stopping or the time budget (at most 10,000)"


@pytest.mark.parametrize("name", BOOSTING)
def test_without_a_time_budget_boosting_keeps_the_library_default(name, digits):
    record = auto_rounds(name, digits, deadline=None, clock=JumpingClock(0))
    assert record["rounds"] <= 100
    assert record["rounds_cap"] == "100 (the libraries' default: no time budget)"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_class_missing_from_training_gets_probability_zero(name, digits):
    fitted = fit(name, digits, drop=3)
    proba = predict_proba(fitted, digits[4])
    assert proba.shape == (len(digits[4]), 10) and (proba[:, 3] == 0).all()
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert fitted.record["classes_missing"] == [3]
    assert fitted.record["val_rows_dropped"] == int((digits[3] == 3).sum()) > 0


def test_unknown_option_gets_a_did_you_mean():
    with pytest.raises(NeuroclassError, match=r"unknown config key 'model.options.n_estimator'.*Did you mean "
                                              r"'model.options.n_estimators'\?"):
        family_options("xgboost", {"n_estimator": 10})


def test_bad_value_names_the_parameter_and_the_rule():
    with pytest.raises(NeuroclassError, match=r"The 'model.options.C' parameter must be > 0. Got -1.0 instead."):
        family_options("logreg", {"C": -1})
    with pytest.raises(NeuroclassError, match=r"'model.options.weights' parameter must be one of 'uniform', "
                                              r"'distance'. Got 'distanc' instead. Did you mean 'distance'\?"):
        family_options("knn", {"weights": "distanc"})


def test_svm_gamma_needs_the_rbf_kernel():
    with pytest.raises(NeuroclassError, match="gamma applies only to kernel=rbf"):
        family_options("svm", {"kernel": "linear", "gamma": 0.1})


def test_unknown_family_gets_a_did_you_mean(digits):
    with pytest.raises(NeuroclassError, match="unknown classical model 'xgbost'.*Did you mean 'xgboost'"):
        fit_classical("xgbost", {}, *digits[:4], classes=10, seed=0, threads=1, deadline=None)


def test_labels_outside_the_classes_are_refused(digits):
    x, y = digits[0], digits[1]
    with pytest.raises(NeuroclassError, match=r"training labels must be whole numbers 0..4"):
        fit_classical("knn", {}, x, y, None, None, classes=5, seed=0, threads=1, deadline=None)
    with pytest.raises(NeuroclassError, match="at least two"):
        fit_classical("knn", {}, x[y == 1], y[y == 1], None, None, classes=10, seed=0, threads=1,
                      deadline=None)


def test_without_validation_rows_boosting_fits_every_round(digits):
    x, y = digits[0], digits[1]
    fitted = fit_classical("xgboost", {"n_estimators": 7}, x, y, None, None, classes=10, seed=0,
                           threads=1, deadline=None)
    assert fitted.record["rounds"] == 7 and fitted.record["best_iteration"] is None
    assert fitted.record["early_stopping"].startswith("off")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_default_space_holds_valid_options(name):
    """Both ends of every range and every listed value are valid values of the option."""
    space = CLASSICAL.get(name).space
    assert space and all(key.startswith("model.options.") for key in space)
    for key, spec in space.items():
        values = spec if isinstance(spec, list) else [spec["low"], spec["high"]]
        for value in values:
            build_dataclass(CLASSICAL.get(name).options, {key.split(".")[-1]: value}, "model.options.")


def test_importing_the_registry_leaves_the_boosting_libraries_unloaded():
    import subprocess
    import sys

    code = ("import sys, neuroclass.classical; "
            "print(sorted(m for m in ('xgboost', 'lightgbm', 'skimage', 'skops') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_svm_needs_rows_of_every_class_for_each_calibration_fold(digits):
    x, y = digits[0], digits[1]
    keep = np.concatenate([np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:3]])
    with pytest.raises(NeuroclassError, match="every class needs at least 5 training rows, and class 2 has 3"):
        fit_classical("svm", {}, x[keep], y[keep], None, None, classes=10, seed=0, threads=1, deadline=None)


def test_knn_needs_as_many_rows_as_neighbours(digits):
    x, y = digits[0][:4], np.array([0, 1, 0, 1])
    with pytest.raises(NeuroclassError, match="'model.options.n_neighbors' parameter must be <= the training "
                                              "rows \\(4\\). Got 5 instead."):
        fit_classical("knn", {}, x, y, None, None, classes=2, seed=0, threads=1, deadline=None)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_fitting_and_predicting_print_nothing(name, digits, capfd):
    """The libraries' own chatter (LightGBM's warnings, XGBoost's evaluation log) stays off."""
    fitted = fit(name, digits, {ROUNDS[name]: 5} if name in ROUNDS else {})
    predict_proba(fitted, digits[4])
    out, err = capfd.readouterr()
    assert out == "" and err == ""
