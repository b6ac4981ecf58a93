"""Predictor: a trained model and its InferencePolicy, turning raw inputs into probabilities.

Every consumer predicts through this class: ``neuroclass predict``, ``evaluate``, the report,
``embed``, the scikit-learn estimator and (later) serving and ensembles, so they agree exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.pipeline import Pipeline

from neuroclass.data.images import load_image
from neuroclass.data.paths import missing_file
from neuroclass.data.pixels import DecodeSettings
from neuroclass.data.schema import Schema, encode
from neuroclass.data.table_file import encode_features, read_table
from neuroclass.data.table_prep import transform
from neuroclass.device import memory_format, pick_device
from neuroclass.errors import NeuroclassError
from neuroclass.inference.policy import InferencePolicy
from neuroclass.models import Classifier
from neuroclass.runs import RunFolder
from neuroclass.text_width import display_width, pad

NOT_SURE = "not sure"  # the label of a prediction whose top probability is below --abstain-below


@dataclass
class Prediction:
    source: str
    label: str
    probability: float
    top: list[tuple[str, float]]
    abstained: bool = False  # top probability below the caller's threshold: label is NOT_SURE

    def as_dict(self) -> dict:
        return {"source": self.source, "label": self.label, "probability": self.probability,
                "abstained": self.abstained,
                "top": [{"label": c, "probability": p} for c, p in self.top]}


class FilePredictions:
    """What a single model and an ensemble predict alike: files -> Predictions, through the
    class's ``load_files``, ``predict_proba_tensor`` and ``classes``."""

    classes: list[str]

    def predict_files(self, files: list[str | Path], top_k: int = 3,
                      abstain_below: float | None = None) -> list[Prediction]:
        """One Prediction per input (an image file, or a table's row) with the ``top_k`` classes;
        raises NeuroclassError for a missing, unreadable or wrongly shaped file."""
        x, names = self.load_files(files)
        return self.describe(self.predict_proba_tensor(x), names, top_k, abstain_below)

    def describe(self, proba: np.ndarray, names: list[str], top_k: int,
                 abstain_below: float | None = None) -> list[Prediction]:
        """Predictions with the ``top_k`` classes (``describe_probabilities`` with these classes).

        Example::

            predictor.describe(np.array([[0.5, 0.3, 0.2]]), ["x"], 2, abstain_below=0.6)[0].label
            # -> 'not sure'
        """
        return describe_probabilities(self.classes, proba, names, top_k, abstain_below)


class Predictor(FilePredictions):
    """A model ready to predict: ``meta`` is model.json's content (classes, kind, input_shape,
    preprocessing), ``policy`` the test-time views and temperature chosen at training time.

    Example::

        p = Predictor.from_run("runs/digits-mlp-20260101-120000")
        p.predict_files(["seven.png"])[0].label
        # -> '7'
    """

    def __init__(self, model: Classifier, meta: dict, policy: InferencePolicy,
                 path: Path | None = None, device: str | torch.device = "auto",
                 batch_size: int = 256) -> None:
        self.model, self.meta, self.policy, self.path = model, meta, policy, path
        self.classes: list[str] = list(meta["classes"])
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.batch_size = batch_size
        # the layout predict_logits gives image batches: 1.3x faster inference on a CPU
        self.model.to(self.device, memory_format=memory_format(self.device, True, 1 + len(meta["input_shape"])))

    @classmethod
    def from_run(cls, path: str | Path, device: str = "auto") -> "Predictor":
        """The finished run folder ``path``; a missing or incomplete folder raises NeuroclassError."""
        return cls.from_folder(RunFolder.open(path), device)

    @classmethod
    def from_folder(cls, run: RunFolder, device: str | torch.device = "auto") -> "Predictor":
        model, meta = run.load_model()
        # a model.json written before inference policies: one view, T = 1
        policy = InferencePolicy.from_dict(meta.get("inference", {}), str(run.file("model.json")))
        return cls(model, meta, policy, run.path, device)

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    # ------------------------------------------------------------------ inputs -> model tensors
    def load_files(self, files: list[str | Path]) -> tuple[torch.Tensor, list[str]]:
        """Image files (any size, gray or colour) or CSV/Parquet tables -> (tensor, source names):
        what ``predict_proba_tensor`` takes (a table's rows encoded by the run's schema, raw)."""
        if self.kind == "table":
            frames, names = [], []
            for f in files:
                path = Path(f)
                if not path.is_file():
                    raise missing_file(path)
                df = read_table(path)
                frames.append(encode_rows(df, self.meta["preprocessing"], str(path)))
                # data rows counted from 1, as messages about the file count them (table_file.row_places)
                names += [f"{path.name}:{i}" for i in range(1, len(df) + 1)]
            return torch.from_numpy(np.concatenate(frames)), names
        c, h, w = self.meta["input_shape"]
        # decoded as at training; a model.json written before the record decodes as then (version 1)
        decode = DecodeSettings.from_record(self.meta.get("preprocessing", {}).get("decode"))
        arrays = [load_image(f, channels=c, size=(h, w), decode=decode) for f in files]
        return torch.from_numpy(np.stack(arrays)), [str(f) for f in files]

    @cached_property
    def table_preprocessing(self) -> Pipeline | None:
        """The run's fitted table preprocessing (preprocess.skops), or None: a model without one
        (images, arrays, a table run from before per-column schemas). Loaded on first use."""
        record = self.meta.get("preprocessing", {}).get("table", {})
        if "transformer" not in record:
            return None
        if self.path is None:
            raise NeuroclassError("this model's table preprocessing was not given with it; load the "
                                  "model from its run folder")
        return RunFolder.open(self.path).preprocess()

    def model_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The network's inputs for ``x`` as data.load and ``load_files`` give them: a table's raw
        encoded rows (N, D_raw) through the run's fitted preprocessing, float32 (N, D); other
        inputs as they are. Raises NeuroclassError for rows of another width."""
        if self.table_preprocessing is None:
            return x
        return torch.from_numpy(transform(self.table_preprocessing, x, "inputs"))

    # ------------------------------------------------------------------ outputs
    def predict_logits_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) float32 on the CPU under the policy's test-time views, before the
        temperature. ``x``: (N, C, H, W) uint8 images or (N, D) float32 rows as data.load gives
        them (a table's raw rows go through ``model_inputs`` first)."""
        x = self.model_inputs(x)
        shape = tuple(self.meta["input_shape"])
        if tuple(x.shape[1:]) != shape:
            raise NeuroclassError(f"inputs have shape {tuple(x.shape[1:])} but the model expects {shape}; "
                                  f"give images of {shape[-2]}x{shape[-1]} pixels (files are resized on load)"
                                  if len(shape) == 3 else
                                  f"inputs have {tuple(x.shape[1:])} features but the model expects {shape}; "
                                  "give rows with the training table's columns")
        return self.policy.logits(self.model, x, self.device, self.batch_size)

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """softmax(logits / temperature) as float32 (N, K): the probabilities every command reports.

        Example::

            predictor.probabilities(predictor.predict_logits_tensor(x))
        """
        return self.policy.probabilities(logits)

    def predict_proba_tensor(self, x: torch.Tensor) -> np.ndarray:
        """Probabilities (N, K) float32 for model inputs ``x``; rows sum to 1."""
        return self.probabilities(self.predict_logits_tensor(x))


def encode_rows(df: pd.DataFrame, preprocessing: dict, where: str) -> np.ndarray:
    """A table's rows ``df`` (as read) encoded as a run's model.json ``preprocessing`` records:
    raw by the schema (data/schema.py) when it has "table", else numeric and one-hot as a run
    from before per-column schemas did; float32 (N, D). NeuroclassError naming the column and row."""
    if "table" in preprocessing:
        return encode(df, Schema.from_record(preprocessing["table"], where), where)
    return encode_features(df, preprocessing, where)


def describe_probabilities(classes: list[str], proba: np.ndarray, names: list[str], top_k: int,
                           abstain_below: float | None = None) -> list[Prediction]:
    """Predictions from probabilities ``proba`` (N, K) over ``classes``, one per name, with the
    ``top_k`` classes; a top probability below ``abstain_below`` gives the label NOT_SURE
    (abstained=True) and keeps the top list, so callers still see the guesses. Raises
    NeuroclassError when ``abstain_below`` is not in [0, 1].

    >>> describe_probabilities(["a", "b", "c"], np.array([[0.5, 0.3, 0.2]]), ["x"], 2, 0.6)[0].label
    'not sure'
    """
    if abstain_below is not None and not 0 <= abstain_below <= 1:
        raise NeuroclassError(f"--abstain-below must be a probability in [0, 1], e.g. 0.8. "
                              f"Got {abstain_below} instead.")
    k = max(1, min(top_k, len(classes)))
    out = []
    for name, row in zip(names, proba):
        order = np.argsort(-row)[:k]
        top = [(classes[i], float(row[i])) for i in order]
        abstained = abstain_below is not None and top[0][1] < abstain_below
        out.append(Prediction(name, NOT_SURE if abstained else top[0][0], top[0][1], top, abstained))
    return out


def format_predictions(preds: list[Prediction]) -> str:
    """A plain-text table of predictions for the terminal, columns padded by display width (a CJK
    character takes two columns)."""
    width = max([display_width(p.source) for p in preds] + [6]) + 2
    label_width = max([display_width(p.label) + 2 for p in preds] + [16])
    lines = [f"{pad('source', width)}{pad('label', label_width)}{'prob':>8}  top-k"]
    for p in preds:
        top = ", ".join(f"{c} {q:.3f}" for c, q in p.top)
        lines.append(f"{pad(p.source, width)}{pad(p.label, label_width)}{p.probability:>8.4f}  {top}")
    return "\n".join(lines)
