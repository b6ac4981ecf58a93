import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from neuroclass.inference.calibrate import (abstention_curve, calibrate, expected_calibration_error,
                                             fit_temperature, guarded_temperature, reliability_curve,
                                             softmax_with_temperature)


def _softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _calibrated(n=20000, n_classes=5, seed=0):
    """Logits whose softmax is the true label distribution: labels are drawn from it."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, n_classes))
    proba = _softmax(logits)
    y = (proba.cumsum(1) > rng.random((n, 1))).argmax(1)  # one categorical draw per row
    return logits, y


@pytest.fixture(scope="module")
def calibrated():
    return _calibrated()


@pytest.fixture(scope="module")
def over_confident(calibrated):
    """The same data at T = 1, scored by a model whose logits are 5x too large."""
    logits, y = calibrated
    return 5.0 * logits, y


def test_ece_of_a_calibrated_model_is_near_zero(calibrated):
    logits, y = calibrated
    assert expected_calibration_error(y, _softmax(logits)) < 0.02


def test_ece_of_an_over_confident_model_is_large(over_confident):
    logits, y = over_confident
    assert expected_calibration_error(y, _softmax(logits)) > 0.15


def test_ece_and_reliability_curve_agree_with_a_direct_computation(calibrated):
    logits, y = calibrated
    proba = _softmax(logits)
    bins = 10
    curve = reliability_curve(y, proba, bins=bins)
    conf, correct = proba.max(1), proba.argmax(1) == y
    expected_ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (conf > lo) & (conf <= hi)
        assert curve["count"][b] == inside.sum()
        if inside.any():
            assert curve["confidence"][b] == pytest.approx(conf[inside].mean())
            assert curve["accuracy"][b] == pytest.approx(correct[inside].mean())
            expected_ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
        else:
            assert curve["confidence"][b] is None and curve["accuracy"][b] is None
    assert sum(curve["count"]) == len(y)
    assert curve["edges"] == pytest.approx(np.linspace(0, 1, bins + 1))
    assert expected_calibration_error(y, proba, bins=bins) == pytest.approx(expected_ece)


def test_fitted_temperature_recovers_the_over_confidence(over_confident):
    logits, y = over_confident
    assert fit_temperature(logits, y) == pytest.approx(5.0, rel=0.05)
    # tensors work as well as arrays, and a calibrated model needs no scaling
    calibrated_logits = torch.as_tensor(logits / 5.0, dtype=torch.float32)
    assert fit_temperature(calibrated_logits, torch.as_tensor(y)) == pytest.approx(1.0, rel=0.05)


def test_fitted_temperature_minimises_the_validation_log_loss(over_confident):
    logits, y = over_confident
    t = fit_temperature(logits, y)
    best = skm.log_loss(y, _softmax(logits / t))
    for nearby in (0.9 * t, 1.1 * t):
        assert skm.log_loss(y, _softmax(logits / nearby)) > best


def test_calibrate_lowers_validation_ece_and_log_loss(over_confident):
    logits, y = over_confident
    result = calibrate(logits, y)
    assert result["decision"] == "accepted"
    assert result["temperature"] == result["candidate_temperature"] == pytest.approx(5.0, rel=0.05)
    before = skm.log_loss(y, _softmax(logits))
    after = skm.log_loss(y, softmax_with_temperature(logits, result["temperature"]))
    assert result["val_log_loss_uncalibrated"] == pytest.approx(before)
    assert result["val_log_loss_candidate"] == pytest.approx(after)
    assert after < before
    assert result["val_ece_before"] == pytest.approx(expected_calibration_error(y, _softmax(logits)))
    assert result["val_ece_after"] < 0.03 < 0.15 < result["val_ece_before"]
    # scaling changes confidence, never the predicted class
    assert (softmax_with_temperature(logits, result["temperature"]).argmax(1) == logits.argmax(1)).all()


def test_guard_rejects_a_temperature_that_worsens_validation_log_loss(calibrated):
    logits, y = calibrated
    result = guarded_temperature(logits, y, 0.2)
    assert result["temperature"] == 1.0
    assert result["candidate_temperature"] == 0.2
    assert result["decision"] == "rejected" and "not lower" in result["reason"]
    assert result["val_log_loss_uncalibrated"] == pytest.approx(skm.log_loss(y, _softmax(logits)))
    assert result["val_log_loss_candidate"] == pytest.approx(skm.log_loss(y, _softmax(logits / 0.2)))
    assert result["val_log_loss_candidate"] > result["val_log_loss_uncalibrated"]
    assert result["val_ece_after"] == result["val_ece_before"]  # the uncalibrated model is kept


def test_guard_keeps_a_temperature_that_helps(over_confident):
    logits, y = over_confident
    result = guarded_temperature(logits, y, 4.0)
    assert result["temperature"] == 4.0 and result["decision"] == "accepted"
    assert result["val_ece_after"] < result["val_ece_before"]


def test_calibrate_keeps_t_1_when_every_validation_example_is_right():
    """Separable validation logits: the log loss falls forever as T -> 0, so the fit only finds the
    search bound; sharpening to it would make the model certain of everything on new data."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=200)
    logits = rng.normal(size=(200, 3))
    logits[np.arange(200), y] += 4.0  # every argmax right
    assert (logits.argmax(1) == y).all()
    result = calibrate(logits, y)
    assert result["decision"] == "rejected" and result["temperature"] == 1.0
    assert result["candidate_temperature"] < 0.05 and "classified correctly" in result["reason"]
    assert result["val_ece_after"] == result["val_ece_before"]


def test_abstention_on_a_constructed_case_is_exactly_monotone():
    # ten examples, confidence 0.55 .. 1.0; the three least confident are wrong, the rest right
    confidence = np.linspace(0.55, 1.0, 10)
    proba = np.stack([confidence, 1 - confidence], axis=1)
    y = np.where(np.arange(10) < 3, 1, 0)
    thresholds = [0.0, 0.5, 0.58, 0.68, 0.78, 0.88, 0.93, 0.98]  # none on a confidence
    curve = abstention_curve(y, proba, thresholds)
    assert [p["threshold"] for p in curve] == thresholds
    coverage = [p["coverage"] for p in curve]
    accuracy = [p["accuracy"] for p in curve]
    assert coverage[0] == 1.0 and accuracy[0] == pytest.approx(skm.accuracy_score(y, proba.argmax(1)))
    assert coverage == pytest.approx([1.0, 1.0, 0.9, 0.7, 0.5, 0.3, 0.2, 0.1])
    assert np.all(np.diff(coverage) <= 0)
    assert np.all(np.diff(accuracy) >= 0)
    assert accuracy[-1] == 1.0


def test_abstention_default_thresholds_on_random_predictions(calibrated):
    logits, y = calibrated
    curve = abstention_curve(y, _softmax(logits))
    assert curve[0]["threshold"] == 0.0 and curve[0]["coverage"] == 1.0
    assert curve[-1]["threshold"] == 1.0
    assert np.all(np.diff([p["coverage"] for p in curve]) <= 0)
    for point in curve:
        if point["coverage"] == 0.0:
            assert point["accuracy"] is None


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="proba must be"):
        expected_calibration_error(np.array([0, 1, 1]), np.array([[0.5, 0.5], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="logits must be"):
        fit_temperature(np.array([0.1, 0.2]), np.array([0, 1]))
