"""Fitting a classical family in the one pipeline: what the Trainer does for a network, once.

``fit_classical_model`` turns the training and validation splits into feature rows (images into
HOG/LBP features when ``data.features`` asks, through ``features_of``, which keeps them on disk per
dataset), fits the family within the run's deadline (boosting and forests stop adding rounds when
it comes; logreg and svm fit on as many training rows as it allows, leaving time to predict the
validation and test splits; the validation split early-stops boosting and calibrates svm), and
fills the same ``TrainState`` a network's fit fills: one history row per round with the validation
log-loss and accuracy where the library reports them, the stop reason and the training time. The
time kept back for the finish (predicting the validation and test splits, the report) is the
caller's ``reserve_seconds`` plus the features' cost for those rows, estimated from the training
rows'; the family leaves time for its own predictions of them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from neuroclass.classical import fit_classical
from neuroclass.classical.model import ClassicalModel
from neuroclass.config import Config
from neuroclass.data.cache import cache_dir
from neuroclass.io import write_bytes_atomic
from neuroclass.training.state import StopReason, TrainState

log = logging.getLogger(__name__)  # what the features and the fit did, at INFO; the CLI prints it

STOPS = {"time_budget": StopReason.TIME_BUDGET, "early_stopping": StopReason.EARLY_STOPPING,
         "complete": StopReason.COMPLETED}
# share of the time left that the finish may take beyond its estimate (predicting with a forest or
# an rbf SVM costs more per row than a network's forward pass; the estimate knows only the features)
FINISH_SHARE = 0.05


def features_of(model: ClassicalModel, x: torch.Tensor, cache: bool = True) -> np.ndarray:
    """Feature rows for inputs ``x``: float32 (N, D). Images, when ``model.features`` is set,
    become their HOG/LBP features: read from the feature cache (``cache_root``) when the same
    pixels and options made them before, else computed and, with ``cache``, stored there (a
    SHA-256 of the pixels names the file). Feature rows pass through."""
    if not model.features or not cache:
        return model.rows(x)
    pixels = x.contiguous().numpy() if isinstance(x, torch.Tensor) else np.ascontiguousarray(x)
    digest = hashlib.sha256(pixels.tobytes())
    digest.update(json.dumps([model.features, model.feature_options.__dict__, list(pixels.shape)],
                             sort_keys=True).encode())
    path = cache_root() / f"features-{digest.hexdigest()[:32]}.npy"
    if path.is_file():
        try:
            rows = np.load(path, allow_pickle=False)
            if rows.shape[0] == len(pixels) and rows.dtype == np.float32:
                return rows
        except (OSError, ValueError):
            pass  # a damaged file is computed and written again
    rows = model.rows(pixels)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, _npy_bytes(rows))
    except OSError as exc:  # a read-only cache costs time, not the run
        log.warning("image features not cached in %s: %s", path.parent, exc)
    return rows


def classical_inputs(model: ClassicalModel, inputs: tuple, cache: bool = True) -> tuple[ClassicalModel, tuple]:
    """(a model that takes feature rows, ``inputs`` as feature rows) for scoring splits after the
    fit: with ``model.features`` the images' cached features and the same fitted estimator without
    the feature step; else ``model`` and ``inputs`` as they are. None inputs stay None."""
    if not model.features:
        return model, inputs
    rows = tuple(None if x is None else torch.from_numpy(features_of(model, x, cache)) for x in inputs)
    return ClassicalModel(model.family_name, model.fitted), rows


def _npy_bytes(rows: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, rows, allow_pickle=False)
    return buffer.getvalue()


def fit_classical_model(model: ClassicalModel, cfg: Config, train: tuple[torch.Tensor, torch.Tensor],
                        val: Optional[tuple[torch.Tensor, torch.Tensor]], classes: int, finish_rows: int,
                        deadline: float | None, clock: Callable[[], float] = time.perf_counter,
                        reserve_seconds: float = 0.0, cache: bool = True) -> TrainState:
    """Fit ``model``'s family on ``train`` = (x, y) (x: (N, D) float rows or (N, C, H, W) uint8
    images, y: int64 (N,)), early-stopping on ``val`` where the family can, within ``deadline``
    (a ``clock()`` reading) less ``reserve_seconds`` and the features' cost for ``finish_rows``
    rows predicted after the fit. ``cache``: keep image features in the feature cache.
    Sets ``model.fitted``; returns the fit's TrainState (history per round, stop reason, seconds).
    Raises NeuroclassError for options or data the family refuses."""
    state = TrainState(max_epochs=1, steps_per_epoch=1, deadline=deadline, clock=clock)
    start = clock()
    x_train = features_of(model, train[0], cache)
    per_row = (clock() - start) / max(1, len(x_train)) if model.features else 0.0
    x_val = features_of(model, val[0], cache) if val is not None else None
    fit_deadline = None
    if deadline is not None:
        left = deadline - clock() - reserve_seconds - per_row * finish_rows
        fit_deadline = clock() + max(0.0, left * (1 - FINISH_SHARE))
    fitted = fit_classical(cfg.model.name, dict(cfg.model.options), x_train, train[1].numpy(), x_val,
                           None if val is None else val[1].numpy(), classes, cfg.train.seed,
                           fit_threads(len(x_train)), fit_deadline, clock, predict_rows=finish_rows)
    model.fitted = fitted
    record = fitted.record
    state.history = history_rows(record.get("history", {}), clock() - start)
    state.epoch = record.get("rounds") or 1
    state.step = state.epoch
    state.best_epoch = None if record.get("best_iteration") is None else record["best_iteration"] + 1
    state.samples_seen = record.get("rows_used", len(x_train))
    state.train_seconds = clock() - start
    state.stop_reason = STOPS[record["stop_reason"]]
    state.stop_detail = stop_detail(cfg.model.name, record)
    return state


# below this many training rows a classical fit runs on one thread: OpenMP's worker threads
# (XGBoost, LightGBM, scikit-learn's histogram boosting) spin while they wait, and with another
# process on one of two cores small fits ran 100-250x slower than alone; a small fit gains
# nothing from a second thread
SINGLE_THREAD_ROWS = 10_000


def fit_threads(rows: int) -> int:
    """Threads for a classical fit on ``rows`` training rows: one below SINGLE_THREAD_ROWS, else
    torch's thread count (the run's train.threads).

    >>> fit_threads(300)
    1
    """
    return 1 if rows < SINGLE_THREAD_ROWS else torch.get_num_threads()


def fit_on_splits(model: ClassicalModel, cfg: Config, splits, classes: int, deadline: float | None,
                  clock: Callable[[], float] = time.perf_counter, reserve_seconds: float = 0.0) -> TrainState:
    """``fit_classical_model`` on a run's splits (data.split's Splits): the training split, the
    validation split for early stopping, and the validation and test rows as what the finish
    predicts after the fit; image features cached when data.cache is on."""
    val = (splits.val.x, splits.val.y) if splits.val is not None and len(splits.val) else None
    finish_rows = sum(len(s) for s in (splits.val, splits.test) if s is not None)
    return fit_classical_model(model, cfg, (splits.train.x, splits.train.y), val, classes, finish_rows,
                               deadline, clock, reserve_seconds, cfg.data.cache)


def history_rows(history: dict, seconds: float) -> list[dict]:
    """metrics.csv rows, one per round: {"epoch": round (1-based), "val_loss", "val_accuracy"}
    from the family's per-round validation record; one row with the fit's seconds when it has none.

    >>> history_rows({"val_log_loss": [0.5, 0.4]}, 2.0)
    [{'epoch': 1, 'val_loss': 0.5}, {'epoch': 2, 'val_loss': 0.4, 'time': 2.0}]
    """
    losses, accuracies = history.get("val_log_loss", []), history.get("val_accuracy", [])
    rounds = max(len(losses), len(accuracies))
    if not rounds:
        return [{"epoch": 1, "time": seconds}]
    rows = []
    for i in range(rounds):
        row = {"epoch": i + 1}
        if i < len(losses):
            row["val_loss"] = losses[i]
        if i < len(accuracies):
            row["val_accuracy"] = accuracies[i]
        rows.append(row)
    rows[-1]["time"] = seconds
    return rows


def stop_detail(family: str, record: dict) -> str:
    """The fit's end in words, e.g. "xgboost: 87 rounds; validation log-loss lowest at round 67",
    or for a family without rounds fitted on part of the rows, "svm: time budget: 24,000 of 54,000
    rows fit in 8.1 minutes"."""
    rounds, best = record.get("rounds"), record.get("best_iteration")
    if not rounds and record["stop_reason"] == "time_budget":
        return f"{family}: {record.get('why') or 'time budget'}"
    what = f"{family}: " + (f"{rounds} rounds" if rounds else "fitted")
    if best is not None:
        what += f"; validation log-loss lowest at round {best + 1}"
    reason = record["stop_reason"]
    if reason == "time_budget":
        what += "; stopped adding rounds at the time budget"
    elif reason == "early_stopping":
        what += f"; stopped early ({record.get('early_stopping', 'no validation improvement')})"
    return what


def cache_root() -> Path:
    """Where feature rows are cached: the decoded-image cache's folder (``data.cache.cache_dir``),
    as features-<key>.npy files beside its key folders."""
    return cache_dir()
