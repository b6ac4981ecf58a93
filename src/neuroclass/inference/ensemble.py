"""EnsemblePredictor: several trained runs that predict as one, and ``load_predictor`` for any folder.

An ensemble averages away part of its members' independent errors (Dietterich 2000, "Ensemble
methods in machine learning", MCS 2000, LNCS 1857). Its members' calibrated probabilities (each
member's own Predictor, temperature and test-time views included) are combined by the method that
ensemble.json records (runs/ensemble_file.py):

- ``mean``: the weighted mean of the members' probabilities;
- ``vote``: each member votes for its top class with its weight; the probabilities are the vote
  shares, a tie broken by the mean probability;
- ``stacking``: a logistic regression fitted on the members' out-of-fold probabilities
  (inference/stacking.py; Wolpert 1992) maps their concatenated probabilities to the ensemble's.

An EnsemblePredictor offers what predict, evaluate and the report use of a Predictor (``classes``,
``meta``, ``kind``, ``load_files``, ``predict_logits_tensor``, ``probabilities``,
``predict_proba_tensor``, ``predict_files``, ``describe``), but no single network (``model``):
commands that need one layer's features (embed) refuse an ensemble.

Example::

    predictor = load_predictor("runs/digits-ensemble-mean-20260101-120000")
    predictor.predict_files(["seven.png"])[0].label
    # -> '7'
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from neuroclass.errors import NeuroclassError
from neuroclass.inference.predictor import FilePredictions, Predictor
from neuroclass.inference.stacking import stacked_probabilities, stacker_from_record
from neuroclass.runs import METHODS, RunFolder, is_ensemble_folder, read_ensemble
from neuroclass.runs.ensemble_file import check_weights

# vote shares are shifted by this much times the mean probability, so that the top class of a tied
# vote is the one the members hold likelier; weights closer than this count as tied
VOTE_TIE_BREAK = 1e-5
MAX_DEPTH = 4  # ensembles of ensembles (of cross-validation folds); deeper means a member refers back


def mean_probabilities(member_proba: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """The weighted mean (N, K) float32 of the members' probabilities (M, N, K); ``weights``: M
    numbers >= 0, not all 0 (normalised here).

    >>> mean_probabilities(np.array([[[1.0, 0.0]], [[0.0, 1.0]]]), [3, 1]).tolist()
    [[0.75, 0.25]]
    """
    w = np.asarray(weights, dtype=np.float64)
    return np.tensordot(w / w.sum(), np.asarray(member_proba, np.float64), axes=1).astype(np.float32)


def vote_probabilities(member_proba: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Weighted vote shares (N, K) float32: each member's top class gets its share of the total
    weight; a tie goes to the class with the higher weighted mean probability (the shares move by
    at most VOTE_TIE_BREAK). ``member_proba``: (M, N, K); ``weights``: M numbers >= 0, not all 0.

    >>> shares = vote_probabilities(np.array([[[0.6, 0.4]], [[0.45, 0.55]], [[0.9, 0.1]]]), [1, 1, 1])
    >>> [round(float(p), 3) for p in shares[0]]
    [0.667, 0.333]
    >>> vote_probabilities(np.array([[[0.6, 0.4]], [[0.1, 0.9]]]), [1, 1]).argmax(axis=1).tolist()
    [1]
    """
    proba = np.asarray(member_proba, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    m, n, k = proba.shape
    shares = np.zeros((n, k))
    for weight, member in zip(w, proba):
        shares[np.arange(n), member.argmax(axis=1)] += weight
    mean = np.tensordot(w, proba, axes=1)
    return ((shares + VOTE_TIE_BREAK * mean) / (1.0 + VOTE_TIE_BREAK)).astype(np.float32)


def ensemble_meta(meta: dict, method: str) -> dict:
    """An ensemble's model.json from its first member's metadata ``meta``: the kind, classes, input
    shape and preprocessing (how raw inputs become model inputs), "ensemble": true and the method.

    >>> ensemble_meta({"kind": "image", "classes": ["a"], "input_shape": [1, 8, 8], "family": "mlp"}, "vote")
    {'kind': 'image', 'classes': ['a'], 'input_shape': [1, 8, 8], 'preprocessing': {}, 'ensemble': True, 'method': 'vote'}
    """
    return {"kind": meta["kind"], "classes": list(meta["classes"]), "input_shape": list(meta["input_shape"]),
            "preprocessing": meta.get("preprocessing", {}), "ensemble": True, "method": method}


class EnsemblePredictor(FilePredictions):
    """Member predictors (Predictor or EnsemblePredictor, same classes and input shape) combined by
    ``method`` ("mean", "vote" or "stacking") with ``weights`` (one per member, >= 0; unused by
    stacking). ``meta``: the ensemble's model.json (kind, classes, input_shape, preprocessing,
    "ensemble": true); ``stacker``: the fitted LogisticRegression for "stacking".

    Example::

        ens = EnsemblePredictor([load_predictor(a), load_predictor(b)], [1, 1], "mean",
                                load_predictor(a).meta)
        ens.predict_proba_tensor(x).shape
        # -> (N, K)
    """

    def __init__(self, members: list, weights: Sequence[float], method: str, meta: dict,
                 stacker: LogisticRegression | None = None, path: Path | None = None) -> None:
        if not members:
            raise NeuroclassError("an ensemble needs at least one member run")
        if method not in METHODS:
            raise NeuroclassError(f"ensemble method must be one of {', '.join(METHODS)}. Got {method!r} instead.")
        if method == "stacking" and stacker is None:
            raise NeuroclassError("ensemble method 'stacking' needs a fitted stacker")
        self.members, self.method, self.stacker, self.path = list(members), method, stacker, path
        self.weights = check_weights(weights, len(members))  # one per member, >= 0, one > 0
        self.meta = ensemble_meta(meta, method)
        self.classes: list[str] = list(meta["classes"])
        self.device = members[0].device

    @classmethod
    def from_folder(cls, path: str | Path, device: str | torch.device = "auto",
                    depth: int = 0) -> "EnsemblePredictor":
        """The ensemble folder ``path`` with its members loaded (members that are ensembles in
        turn, such as cross-validation summaries, too). Raises NeuroclassError naming the folder or
        member when a file is missing or damaged, or a member's classes or input shape no longer
        match the ensemble's record."""
        if depth > MAX_DEPTH:
            raise NeuroclassError(f"{path}: ensembles nested more than {MAX_DEPTH} deep; does a member "
                                  "refer back to its ensemble? build the ensemble again")
        record = read_ensemble(path)
        for entry in record.members:
            if not entry.path.is_dir():
                raise NeuroclassError(f"{path}: its member {entry.path} is missing (moved or removed); put it "
                                      "back, or build the ensemble again ('neuroclass ensemble --copy' keeps "
                                      "the members inside the ensemble folder)")
        members = [load_predictor(m.path, device, depth + 1) for m in record.members]
        for member, entry in zip(members, record.members):
            if member.classes != list(record.classes) or list(member.meta["input_shape"]) != list(record.input_shape):
                raise NeuroclassError(f"{entry.path}: its classes or input shape are no longer those of the "
                                      f"ensemble {path} (classes {list(record.classes)}, input shape "
                                      f"{list(record.input_shape)}); build the ensemble again")
        folder = RunFolder(path)
        stacker = None
        if record.method == "stacking":
            stacker = stacker_from_record(folder.read_json(record.stacker), str(folder.file(record.stacker)))
        meta = {"kind": record.kind, "classes": list(record.classes), "input_shape": list(record.input_shape),
                "preprocessing": folder.read_json("model.json").get("preprocessing", {})}
        return cls(members, [m.weight for m in record.members], record.method, meta, stacker, folder.path)

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    # ------------------------------------------------------------------ inputs -> model tensors
    def load_files(self, files: list[str | Path]) -> tuple[torch.Tensor, list[str]]:
        """Image files or CSV/Parquet tables -> (tensor, source names), read as the first member
        reads them (the members share their data, so their inputs are the same)."""
        return self.members[0].load_files(files)

    # ------------------------------------------------------------------ outputs
    def member_probabilities(self, x: torch.Tensor) -> np.ndarray:
        """Each member's probabilities for inputs ``x`` ((N, C, H, W) uint8 images or (N, D) float32
        rows): float32 (M, N, K)."""
        return np.stack([member.predict_proba_tensor(x) for member in self.members])

    def combine(self, member_proba: np.ndarray) -> np.ndarray:
        """The ensemble's probabilities (N, K) float32 from the members' (M, N, K), by the method."""
        if self.method == "mean":
            return mean_probabilities(member_proba, self.weights)
        if self.method == "vote":
            return vote_probabilities(member_proba, self.weights)
        return stacked_probabilities(self.stacker, member_proba, len(self.classes))

    def predict_proba_tensor(self, x: torch.Tensor) -> np.ndarray:
        """Probabilities (N, K) float32 for model inputs ``x``; rows sum to 1."""
        return self.combine(self.member_probabilities(x))

    def predict_logits_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """The log of the ensemble's probabilities (N, K) float32 on the CPU, standing in for
        logits: ``probabilities`` of them gives the probabilities back (-inf where a probability is 0)."""
        return torch.log(torch.from_numpy(self.predict_proba_tensor(x)))

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """softmax(logits) as float32 (N, K): of ``predict_logits_tensor``'s output, the ensemble's
        probabilities (an ensemble has no temperature of its own; its members apply theirs)."""
        return torch.softmax(logits.float(), dim=1).numpy()



def load_predictor(path: str | Path, device: str | torch.device = "auto",
                   depth: int = 0) -> Predictor | EnsemblePredictor:
    """A finished run folder as a Predictor, an ensemble folder (ensemble.json, such as a
    cross-validation summary) as an EnsemblePredictor. Raises NeuroclassError for a missing or
    incomplete folder. ``depth``: how deep in nested ensembles this folder is (for their guard).

    Example::

        load_predictor("runs/digits-mlp-20260101-120000").predict_files(["seven.png"])
    """
    folder = RunFolder.open(path)  # a clear error for a missing folder or one without model.json
    if is_ensemble_folder(folder.path):
        return EnsemblePredictor.from_folder(folder.path, device, depth)
    return Predictor.from_folder(folder, device)


def describe_members(predictor: EnsemblePredictor) -> list[dict]:
    """One dict per member for tables: "path", "weight", "model" (a run's family, or "mean of 5
    runs" for a member that is an ensemble)."""
    rows = []
    for member, weight in zip(predictor.members, predictor.weights):
        if isinstance(member, EnsemblePredictor):
            model = f"{member.method} of {len(member.members)} run{'s' if len(member.members) > 1 else ''}"
        else:
            model = member.meta.get("family", "")
        rows.append({"path": str(member.path), "weight": weight, "model": model})
    return rows

