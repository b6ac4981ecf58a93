"""Retraining a search's best values on the whole training data.

A search chooses its values on a validation split carved from the training data. Once they are
chosen, that split has done its work: the best values can be trained again on the training and
validation examples together, the usual last step of a search (KerasTuner's guide retrains the best
hyperparameters on the entire dataset; AutoGluon's ``refit_full``). What a run decides on its
validation split is then fixed from the best trial's run: the test-time views (``train.tta``),
which a run without validation examples cannot judge. The temperature stays 1 (nothing to fit it on),
which changes the probabilities' calibration, not the predicted classes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neuroclass.errors import NeuroclassError

CARVED = ("stratified", "random")  # split.json's "val" for a validation split carved from training


def retrain_values(best_run: str | Path, params: dict[str, Any]) -> dict[str, Any]:
    """The config values that retrain the best trial's ``params`` ({config key: value}, as the
    leaderboard holds them) on the whole training data.

    ``best_run``: the best trial's run folder. Where its validation split was carved from the
    training data (split.json's "val" is "stratified" or "random"), the values add
    ``data.val_fraction: 0`` and ``train.tta``: the views its inference policy chose (model.json's
    "inference"); a shipped validation split, a cross-validation (a summary folder with cv.json) or
    no validation split leave the params as they are. Returns a new dict, params first.

    Raises NeuroclassError when split.json or model.json is missing or unreadable.

    Example::

        retrain_values("runs/tune-fashion-mnist-.../best", {"optim.lr": 0.004})
        # -> {'optim.lr': 0.004, 'data.val_fraction': 0, 'train.tta': 'flip+shift'}
    """
    folder = Path(best_run)
    if (folder / "cv.json").is_file():  # a cross-validation's summary: its folds validated on all of it
        return dict(params)
    split, model = _json(folder / "split.json"), _json(folder / "model.json")
    if split.get("val") not in CARVED or "folds" in split:
        return dict(params)
    views = (model.get("inference") or {}).get("tta", "none")
    return {**params, "data.val_fraction": 0, "train.tta": views}


def _json(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NeuroclassError(f"{path}: cannot read the best trial's record ({exc.__class__.__name__}); "
                              "give the run folder of a finished trial") from None
    if not isinstance(record, dict):
        raise NeuroclassError(f"{path}: not a run record (a JSON object); give the run folder of a finished trial")
    return record
