"""Calibration: how far confidence is from accuracy, temperature scaling, and abstention.

Pure functions over (y_true, proba) or (y_true, logits) arrays. Temperature scaling follows Guo et
al. 2017, "On Calibration of Modern Neural Networks": one scalar T > 0 divides the logits, fitted by
minimising the validation negative log likelihood; it changes confidence, never the argmax.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics as skm

# Bounds on T: a validation set the model separates perfectly has no finite optimum (NLL falls
# forever as T -> 0), so the fitted value is clipped to a range where softmax stays meaningful.
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-2, 1e2


def softmax_with_temperature(logits, temperature: float = 1.0) -> np.ndarray:
    """Probabilities softmax(logits / T) as float64, (N, K).

    >>> softmax_with_temperature(np.array([[2.0, 0.0]]), temperature=2.0).round(3)
    array([[0.731, 0.269]])
    """
    return torch.softmax(_as_logits(logits) / temperature, dim=1).numpy()


def reliability_curve(y_true, proba, bins: int = 15) -> dict:
    """Per-bin mean confidence, accuracy and count over ``bins`` equal-width confidence bins on
    [0, 1] (bin b holds confidences in (b/bins, (b+1)/bins]; the first also holds 0), for a
    reliability diagram. Confidence is the max probability; empty bins have None.

    >>> curve = reliability_curve(np.array([0, 1]), np.array([[0.9, 0.1], [0.7, 0.3]]), bins=5)
    >>> curve["count"], curve["accuracy"][3:], curve["confidence"][3]
    ([0, 0, 0, 1, 1], [0.0, 1.0], 0.7)
    """
    conf_sum, correct_sum, count = _bin_sums(y_true, proba, bins)
    return {"edges": np.linspace(0.0, 1.0, bins + 1).tolist(), "confidence": _means(conf_sum, count),
            "accuracy": _means(correct_sum, count), "count": count.tolist()}


def expected_calibration_error(y_true, proba, bins: int = 15) -> float:
    """ECE: sum over equal-width confidence bins of (bin size / N) * |accuracy - mean confidence|.
    0 for a perfectly calibrated model; the gap that confidence overstates (or understates) accuracy.

    >>> round(expected_calibration_error(np.array([0, 1]), np.array([[0.9, 0.1], [0.7, 0.3]])), 4)
    0.4
    """
    conf_sum, correct_sum, count = _bin_sums(y_true, proba, bins)
    # |sum correct - sum conf| over N is the count-weighted |accuracy - confidence| of each bin
    return float(np.abs(correct_sum - conf_sum).sum() / max(1, count.sum()))


def fit_temperature(logits_val, y_val) -> float:
    """The T > 0 minimising the NLL of softmax(logits_val / T) on the validation split.

    Optimises log T (so T stays positive without constraints) with L-BFGS in float64; the problem
    is one-dimensional and smooth, so a few strong-Wolfe iterations converge.

    Example::

        fit_temperature(5 * logits_val, y_val)
        # -> 4.97
    """
    logits = _as_logits(logits_val)
    y = _as_labels(y_val)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # start at T = 1
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=100, tolerance_grad=1e-10,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    if not np.isfinite(temperature):  # a diverged line search: no evidence for any T but 1
        return 1.0
    return float(np.clip(temperature, MIN_TEMPERATURE, MAX_TEMPERATURE))


def guarded_temperature(logits_val, y_val, temperature: float) -> dict:
    """Keep ``temperature`` only if it lowers the validation log loss below that of T = 1;
    otherwise fall back to T = 1.0 (the uncalibrated model) and say "rejected". Reports both log
    losses and the validation ECE before (T = 1) and after (the temperature returned).

    Example::

        guarded_temperature(logits_val, y_val, 0.2)["decision"]
        # -> 'rejected'
    """
    logits = _as_logits(logits_val)
    y = _as_labels(y_val)
    loss_uncalibrated = _log_loss(logits, y, 1.0)
    loss_candidate = _log_loss(logits, y, temperature)
    accepted = loss_candidate < loss_uncalibrated
    kept = float(temperature) if accepted else 1.0
    verdict = "lower" if accepted else "not lower"
    return {
        "temperature": kept,
        "candidate_temperature": float(temperature),
        "decision": "accepted" if accepted else "rejected",
        "reason": (f"validation log loss with T={temperature:.4g} ({loss_candidate:.4f}) is {verdict} "
                   f"than with T=1 ({loss_uncalibrated:.4f})"),
        "val_log_loss_uncalibrated": loss_uncalibrated,
        "val_log_loss_candidate": loss_candidate,
        "val_ece_before": expected_calibration_error(y_val, softmax_with_temperature(logits)),
        "val_ece_after": expected_calibration_error(y_val, softmax_with_temperature(logits, kept)),
    }


def calibrate(logits_val, y_val) -> dict:
    """Fit a temperature on the validation split and keep it only if it lowers validation log loss
    (see ``guarded_temperature`` for the keys). Apply it with ``softmax_with_temperature``.

    Warns (one line, ``upper_bound_message``) when the fitted T reaches its upper bound.

    Example::

        result = calibrate(logits_val, y_val)
        proba_test = softmax_with_temperature(logits_test, result["temperature"])
    """
    # The guard is judged on the split the fit saw, so a converged fit rarely fails it; it still
    # stops a diverged or clipped fit from making the model worse than no calibration at all.
    result = guarded_temperature(logits_val, y_val, fit_temperature(logits_val, y_val))
    if result["candidate_temperature"] >= MAX_TEMPERATURE:
        warnings.warn(upper_bound_message(), stacklevel=2)
    logits, y = _as_logits(logits_val), _as_labels(y_val)
    if result["decision"] == "accepted" and bool((logits.argmax(1) == y).all()):
        # Every validation example right: the log loss falls forever as T -> 0, so the "fit" is
        # only the clip bound; it would make the model certain of everything on new data.
        result.update(temperature=1.0, decision="rejected", val_ece_after=result["val_ece_before"],
                      reason=(f"every validation example is classified correctly, so the log loss "
                              f"has no minimum (T={result['candidate_temperature']:.4g} is only the "
                              "search bound); keeping T=1"))
    return result


def upper_bound_message() -> str:
    """The one-line warning when the fitted temperature reaches MAX_TEMPERATURE: the validation
    log loss is lowest with the probabilities flattened almost to uniform, which happens when the
    logits, summed over the validation split, favour wrong classes over the true ones; a model that
    trained well never needs that. Names what to check."""
    return (f"calibration: the fitted temperature reached its upper bound T={MAX_TEMPERATURE:g}: the "
            "validation log loss is lowest with near-uniform probabilities, i.e. the model's logits favour "
            "wrong classes, a sign that training went wrong; check that the training loss fell (metrics.csv, "
            "below ln K), the confusion matrix (one class predicted for most examples?), and the loss "
            "settings (train.class_weight, train.label_smoothing, data.sampler, optim.lr)")


def abstention_curve(y_true, proba, thresholds=None) -> list[dict]:
    """For each threshold: the fraction of examples whose max probability is >= threshold
    (coverage) and the accuracy on them (None when none is covered). Default thresholds are
    0, 0.05, ..., 1.

    >>> curve = abstention_curve(np.array([0, 1]), np.array([[0.9, 0.1], [0.6, 0.4]]), [0.0, 0.7])
    >>> [(point["coverage"], point["accuracy"]) for point in curve]
    [(1.0, 0.5), (0.5, 1.0)]
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    thresholds = np.linspace(0.0, 1.0, 21) if thresholds is None else np.asarray(thresholds, float)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    curve = []
    for threshold in thresholds:
        covered = confidence >= threshold
        n_covered = int(covered.sum())
        curve.append({"threshold": float(threshold), "coverage": n_covered / max(1, len(y_true)),
                      "accuracy": float(correct[covered].mean()) if n_covered else None})
    return curve


def _bin_sums(y_true, proba, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin: sum of confidences, number correct, number of examples."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise ValueError(f"proba must be (N, K) with N = len(y_true) = {len(y_true)}; "
                         f"got shape {proba.shape}")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    # searchsorted on the inner edges with side="left" puts a confidence equal to an edge in the
    # bin below it: bins are (lo, hi], as in Guo et al.
    index = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], confidence, side="left")
    return (np.bincount(index, weights=confidence, minlength=bins),
            np.bincount(index, weights=correct, minlength=bins),
            np.bincount(index, minlength=bins))


def _means(total: np.ndarray, count: np.ndarray) -> list[float | None]:
    """Per-bin mean, None where the bin is empty (plain JSON, unlike NaN)."""
    return [float(t / c) if c else None for t, c in zip(total, count)]


def _log_loss(logits: torch.Tensor, y: torch.Tensor, temperature: float) -> float:
    """scikit-learn's log loss of softmax(logits / T): the number the report shows, so the guard
    judges by it (it clips probabilities at float64 eps, which the fit's exact NLL does not)."""
    proba = softmax_with_temperature(logits, temperature)
    return float(skm.log_loss(y.numpy(), proba, labels=np.arange(proba.shape[1])))


def _as_logits(logits) -> torch.Tensor:
    """(N, K) float64 CPU tensor from an array or tensor; float64 keeps the L-BFGS fit exact."""
    logits = logits.detach() if torch.is_tensor(logits) else torch.as_tensor(np.asarray(logits))
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, K); got shape {tuple(logits.shape)}")
    return logits.to("cpu", torch.float64)


def _as_labels(y) -> torch.Tensor:
    """int64 CPU tensor of class indices, the form cross_entropy wants."""
    y = y.detach() if torch.is_tensor(y) else torch.as_tensor(np.asarray(y))
    return y.to("cpu", torch.int64)
