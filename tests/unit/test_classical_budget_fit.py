"""Families without rounds under the time budget: svm's Platt scaling on the validation rows (and its
cross-validated fallback), the training rows a fit takes as extrapolated from probe fits (a fake
clock whose fits cost a known power of the rows), stratified subsamples, and what the record says."""
import math
import re

import numpy as np
import pytest
from sklearn.datasets import load_digits

from neuroclass.classical import dump_fitted, fit_classical, load_fitted, predict_proba
from neuroclass.classical.budget import Budget, FitData
from neuroclass.classical.row_budget import (
    CACHE_BYTES, EXPONENT_RANGE, LINEAR_EXPONENT, MAX_PROBES, MEMORY_SLOWDOWN, PROBE_ROWS, SAFETY, SUPPORT_VECTOR_BYTES, CostModel,
    Probe, RowTask, fit_rows, stratified_subsample)
from neuroclass.training.classical_fit import stop_detail


class FakeClock:
    """A clock that moves only when a fake fit or prediction says it took time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class PowerTask:
    """A family whose fit of n rows takes ``fit_cost * n^power`` fake seconds and whose model has
    ``sv_share * n`` support vectors (None: no support vectors), each costing ``sv_cost`` seconds
    per row predicted (or ``row_cost`` per row without support vectors)."""

    def __init__(self, clock, fit_cost, power=2.0, sv_share=None, sv_cost=0.0, row_cost=0.0, least=1):
        self.clock, self.fit_cost, self.power = clock, fit_cost, power
        self.sv_share, self.sv_cost, self.row_cost = sv_share, sv_cost, row_cost
        self.fits: list[np.ndarray] = []
        self.task = RowTask(self.fit, self.predict, self.support_vectors, least)

    def fit(self, rows):
        self.fits.append(rows)
        self.clock.now += self.fit_cost * len(rows) ** self.power
        return {"rows": len(rows)}

    def support_vectors(self, model):
        return None if self.sv_share is None else int(self.sv_share * model["rows"])

    def predict(self, model, x):
        sv = self.support_vectors(model)
        self.clock.now += len(x) * (self.row_cost if sv is None else self.sv_cost * sv)


def rows_data(n=100_000, classes=10, seed=0):
    y = np.random.default_rng(seed).permutation(np.arange(n) % classes).astype(np.int64)
    return FitData(np.zeros((n, 1), np.float32), y, None, None, np.arange(classes), classes, seed=seed)


def test_the_rows_chosen_follow_the_measured_quadratic_cost():
    clock, data = FakeClock(), rows_data()
    fake = PowerTask(clock, fit_cost=1e-6)  # 1,000 rows: 1 s; 4,000: 16 s
    model, part = fit_rows(fake.task, data, Budget(2000.0, clock))
    plan = part["row_budget"]
    assert [p[0] for p in plan["probes"]] == [PROBE_ROWS * 2 ** i for i in range(MAX_PROBES)]
    assert plan["fit_exponent"] == pytest.approx(2.0)
    expected = math.floor(math.sqrt(plan["seconds_left"] * (1 - SAFETY) / 1e-6))
    assert part["rows_used"] == model["rows"] == len(fake.fits[-1]) == expected
    assert PROBE_ROWS * 2 ** (MAX_PROBES - 1) < expected < 100_000  # fitted again, not a probe kept
    assert part["rows_total"] == 100_000 and part["stop_reason"] == "time_budget"
    assert part["why"] == f"time budget: {expected:,} of 100,000 rows fit in {plan['seconds_left'] / 60:.1f} minutes"
    assert clock.now <= 2000.0  # the fake fit ended before the deadline


def test_the_prediction_of_the_rows_after_the_fit_is_left_time_for():
    clock, data = FakeClock(), rows_data()
    fake = PowerTask(clock, fit_cost=1e-6, sv_share=0.5, sv_cost=1e-6)
    predicted = 20_000
    _, part = fit_rows(fake.task, data, Budget(2000.0, clock, predict_rows=predicted))
    plan = part["row_budget"]
    assert plan["support_vector_exponent"] == pytest.approx(1.0) and plan["predicted_rows"] == predicted
    # 1e-6 n^2 + 1e-6 * (n / 2) * predicted = the usable seconds, solved for n
    usable, b = plan["seconds_left"] * (1 - SAFETY), 0.5e-6 * predicted
    expected = math.floor((-b + math.sqrt(b * b + 4e-6 * usable)) / 2e-6)
    assert abs(part["rows_used"] - expected) <= 1
    fit_only = math.floor(math.sqrt(usable / 1e-6))
    assert part["rows_used"] < fit_only  # predicting takes its share
    start = clock.now
    fake.predict({"rows": part["rows_used"]}, np.zeros(predicted))
    assert clock.now - start + 1e-6 * part["rows_used"] ** 2 <= plan["seconds_left"]


@pytest.mark.parametrize("power, measured", [(1.5, 1.5), (3.0, EXPONENT_RANGE[1]), (0.5, EXPONENT_RANGE[0])])
def test_the_fit_exponent_is_measured_between_the_last_probes_and_clamped(power, measured):
    probes = tuple(Probe(n, 1e-3 * n ** power, 0.0, None) for n in (1000, 2000, 4000))
    cost = CostModel(probes)
    assert cost.exponent == pytest.approx(measured)
    assert cost.fit_seconds(40_000) == pytest.approx(probes[-1].fit_seconds * 10 ** measured)


def test_one_probe_assumes_a_quadratic_fit_and_linear_support_vectors():
    cost = CostModel((Probe(1000, 2.0, 1e-3, 500),))
    assert cost.exponent == 2.0 and cost.support_exponent == 1.0
    assert cost.seconds(3000, 100) == pytest.approx(2.0 * 9 + 1e-3 * 3 * 100)


def test_one_probe_of_a_linear_model_assumes_its_slower_growing_fit():
    cost = CostModel((Probe(1000, 2.0, 1e-3, None),), default_exponent=LINEAR_EXPONENT)
    assert cost.exponent == LINEAR_EXPONENT == 1.5
    assert cost.fit_seconds(4000) == pytest.approx(2.0 * 4 ** 1.5)


@pytest.mark.parametrize("name, options, exponent", [("svm", {}, 2.0), ("svm", {"kernel": "linear", "C": 0.01}, 1.5),
                                                    ("logreg", {}, 1.5)])
def test_each_family_declares_how_its_fit_grows_with_the_rows(name, options, exponent):
    x, y = blobs()
    xv, yv = blobs(300, seed=1)
    record = fit_classical(name, options, x, y, xv, yv, classes=3, seed=0, threads=1, deadline=15.0,
                           clock=TickingClock()).record  # a probe of 2 s of 13 left: no second probe
    assert len(record["row_budget"]["probes"]) == 1 and record["row_budget"]["fit_exponent"] == exponent


def test_support_vectors_beyond_the_cache_cost_more_per_row_predicted():
    features = 1000
    in_cache = CACHE_BYTES // (features * SUPPORT_VECTOR_BYTES)  # support vectors that fit in the cache
    probe = Probe(4000, 4.0, 1e-3, in_cache // 4)  # 1 ms a row
    cost = CostModel((probe,), features)  # one probe: support vectors grow in proportion to rows
    assert cost.predict_seconds(8000, 100) == pytest.approx(2 * 0.1)  # twice the vectors, still cached
    assert cost.predict_seconds(32_000, 100) == pytest.approx(8 * 0.1 * MEMORY_SLOWDOWN)
    beyond = CostModel((Probe(4000, 4.0, 1e-3, 2 * in_cache),), features)  # its timing already paid for it
    assert beyond.predict_seconds(8000, 100) == pytest.approx(2 * 0.1)


def test_all_rows_when_they_fit():
    clock, data = FakeClock(), rows_data()
    fake = PowerTask(clock, fit_cost=1e-9)
    model, part = fit_rows(fake.task, data, Budget(1000.0, clock))
    assert part["rows_used"] == part["rows_total"] == model["rows"] == 100_000
    assert part["stop_reason"] == "complete"
    assert part["why"].startswith("all 100,000 rows fit in the time budget")


def test_a_plan_below_the_first_probe_keeps_that_probe_without_fitting_again():
    clock, data = FakeClock(), rows_data()
    fake = PowerTask(clock, fit_cost=1e-6)
    model, part = fit_rows(fake.task, data, Budget(1.5, clock))  # the 1-second probe leaves 0.5 s
    assert len(fake.fits) == 1 and model["rows"] == part["rows_used"] == PROBE_ROWS
    assert part["stop_reason"] == "time_budget"


def test_without_a_deadline_every_row_is_fitted_once_and_nothing_is_probed():
    clock, data = FakeClock(), rows_data()
    fake = PowerTask(clock, fit_cost=1.0)
    model, part = fit_rows(fake.task, data, Budget(None, clock))
    assert len(fake.fits) == 1 and model["rows"] == 100_000
    assert part["why"] == "all 100,000 rows: no time budget" and "row_budget" not in part


def test_stratified_subsample_keeps_every_class_in_proportion():
    y = np.concatenate([np.zeros(6000), np.ones(3998), np.full(2, 2)]).astype(np.int64)
    rows = stratified_subsample(y, 1000, seed=3)
    counts = np.bincount(y[rows], minlength=3)
    assert len(rows) == len(np.unique(rows)) == 1000 and rows.dtype == np.int64
    assert counts[2] >= 1 and abs(counts[0] - 600) <= 1 and abs(counts[1] - 400) <= 1
    assert np.array_equal(rows, stratified_subsample(y, 1000, seed=3))
    assert not np.array_equal(rows, stratified_subsample(y, 1000, seed=4))
    assert np.bincount(y[stratified_subsample(y, 100, seed=0, least=5)])[2] == 2  # all it has
    assert np.bincount(y[stratified_subsample(y, 20, seed=0, least=5)]).min() == 2
    assert np.array_equal(stratified_subsample(y, 20_000, seed=0), np.arange(len(y)))


@pytest.fixture(scope="module")
def digits():
    """(x_train, y_train, x_val, y_val, x_test): 800 / 300 / 400 rows, 64 pixels in [0, 1]."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))[:1500]
    x, y = (x[order] / 16).astype(np.float32), y[order].astype(np.int64)
    return x[:800], y[:800], x[800:1100], y[800:1100], x[1100:]


def svm(digits, options=None, y_val=None, val=True):
    x, y, xv, yv, _ = digits
    return fit_classical("svm", options or {}, x, y, xv if val else None,
                         (yv if y_val is None else y_val) if val else None, classes=10, seed=0, threads=1,
                         deadline=None)


def test_svm_probabilities_are_platt_scaled_on_the_validation_rows(digits):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    fitted, flipped = svm(digits), svm(digits, y_val=(digits[3] + 1) % 10)
    x_test = digits[4]
    assert isinstance(fitted.estimator, CalibratedClassifierCV)
    assert isinstance(fitted.estimator.estimator, FrozenEstimator)
    assert fitted.record["calibration"] == "sigmoid (Platt) on the 300 validation rows"
    proba = predict_proba(fitted, x_test)
    assert np.allclose(proba.sum(axis=1), 1.0) and (proba >= 0).all()
    # the same SVM (fitted on the training rows), other calibrators (fitted on the validation rows)
    assert np.array_equal(fitted.estimator.estimator.decision_function(x_test),
                          flipped.estimator.estimator.decision_function(x_test))
    assert not np.allclose(predict_proba(flipped, x_test), proba)


def test_svm_without_validation_rows_calibrates_by_cross_validation(digits):
    fitted = svm(digits, val=False)
    calibrated = fitted.estimator.steps[-1][1]
    assert calibrated.cv == 5 and calibrated.ensemble is False
    assert fitted.record["calibration"].endswith("cross-validated on the training rows (no validation rows)")
    assert np.allclose(predict_proba(fitted, digits[4]).sum(axis=1), 1.0)


def test_svm_calibrates_by_cross_validation_when_the_validation_rows_miss_a_class(digits):
    x, y, xv, yv, _ = digits
    fitted = fit_classical("svm", {}, x, y, xv[yv != 4], yv[yv != 4], classes=10, seed=0, threads=1,
                           deadline=None)
    assert fitted.record["calibration"].endswith("(class 4 has no validation row)")


@pytest.mark.parametrize("options, val", [({}, True), ({"kernel": "linear", "scale": False}, True), ({}, False)])
def test_svm_round_trip_gives_identical_probabilities(digits, options, val):
    fitted = svm(digits, options, val=val)
    loaded = load_fitted(*dump_fitted(fitted), "svm")
    assert np.array_equal(predict_proba(loaded, digits[4]), predict_proba(fitted, digits[4]))


def test_linear_svm_without_c_picks_it_on_the_validation_rows_smallest_first(digits):
    from sklearn.svm import LinearSVC

    from neuroclass.classical.sklearn_families import LINEAR_C_PATH

    fitted = svm(digits, {"kernel": "linear"})
    path = fitted.record["C"]
    scores = path["val_accuracy"]
    tried = list(scores)
    assert tried == list(LINEAR_C_PATH[:len(tried)])  # smallest first, in order
    # every C tried scored better than the one before it, except the last when the path stopped early
    rising = [scores[a] < scores[b] for a, b in zip(tried, tried[1:])]
    assert all(rising[:-1]) and (len(tried) == len(LINEAR_C_PATH) or not rising[-1])
    assert path["chosen"] == max(tried, key=lambda c: scores[c])
    model = fitted.estimator.estimator.estimator  # Calibrated -> Frozen -> the scaled LinearSVC
    assert isinstance(model.steps[-1][1], LinearSVC) and model.steps[-1][1].C == path["chosen"]
    assert model.score(digits[2], digits[3]) == pytest.approx(scores[path["chosen"]])


def test_linear_svm_with_c_given_fits_that_c_only(digits):
    fitted = svm(digits, {"kernel": "linear", "C": 0.05})
    assert "C" not in fitted.record
    assert fitted.estimator.estimator.estimator.steps[-1][1].C == 0.05


class TickingClock:
    """A fake clock that moves one second at every reading."""

    def __init__(self) -> None:
        self.now = -1.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def blobs(n=4000, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = (rng.normal(size=(n, 6)) + y[:, None]).astype(np.float32)
    return x, y.astype(np.int64)


@pytest.mark.parametrize("name", ["svm", "logreg"])
def test_the_record_says_how_many_rows_fitted_and_why(name):
    x, y = blobs()
    xv, yv = blobs(300, seed=1)
    fitted = fit_classical(name, {}, x, y, xv, yv, classes=3, seed=0, threads=1, deadline=10.0,
                           clock=TickingClock(), predict_rows=700)
    record = fitted.record
    assert PROBE_ROWS <= record["rows_used"] < record["rows_total"] == 4000
    assert record["stop_reason"] == "time_budget"
    assert re.fullmatch(rf"time budget: {record['rows_used']:,} of 4,000 rows fit in [\d.]+ minutes", record["why"])
    assert record["row_budget"]["predicted_rows"] == 700 + (300 if name == "svm" else 0)
    assert stop_detail(name, record) == f"{name}: {record['why']}"
    proba = predict_proba(fitted, xv)
    assert proba.shape == (300, 3) and np.allclose(proba.sum(axis=1), 1.0) and (proba > 0).all()


def test_knn_keeps_every_row_and_says_why():
    x, y = blobs()
    fitted = fit_classical("knn", {}, x, y, None, None, classes=3, seed=0, threads=1, deadline=1.0,
                           clock=TickingClock())
    record = fitted.record
    assert record["rows_used"] == record["rows_total"] == 4000 and record["stop_reason"] == "complete"
    assert "when it predicts" in record["why"]


def test_a_family_with_rounds_records_every_row():
    x, y = blobs(500)
    record = fit_classical("random_forest", {"n_estimators": 5}, x, y, None, None, classes=3, seed=0, threads=1,
                           deadline=None).record
    assert record["rows_used"] == record["rows_total"] == 500 and record["why"] == "all 500 rows"
