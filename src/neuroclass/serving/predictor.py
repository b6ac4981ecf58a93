"""Predictor: a finished run loaded for inference on raw inputs (image files, table rows, arrays)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuroclass.artifacts import load_model
from neuroclass.data.arrays import features_to_float, images_to_uint8
from neuroclass.data.images import load_image
from neuroclass.data.table import encode_features, read_table
from neuroclass.device import pick_device
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.tta import POLICIES, tta_logits
from neuroclass.models import Classifier

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


class Predictor:
    """>>> p = Predictor.from_run("runs/digits-mlp-20260101-120000")  # doctest: +SKIP
    >>> p.predict_files(["seven.png"])[0].label  # doctest: +SKIP
    '7'
    """

    def __init__(self, model: Classifier, meta: dict, path: Path | None = None,
                 device: str = "auto") -> None:
        self.model, self.meta, self.path = model, meta, path
        self.classes: list[str] = meta["classes"]
        # softmax(logits / T): T fitted on the validation split at training time; older runs lack it
        self.temperature = float(meta.get("temperature", 1.0))
        self.tta = meta.get("tta", "none")  # test-time augmentation chosen on the validation split
        if self.tta not in POLICIES:
            raise NeuroclassError(f"model.json: tta must be one of {', '.join(POLICIES)}. "
                                  f"Got {self.tta!r} instead.")
        self.tta_shift = meta.get("tta_shift", 1)  # pixels the "shift" policies move each view by
        if isinstance(self.tta_shift, bool) or not isinstance(self.tta_shift, int) or self.tta_shift < 1:
            raise NeuroclassError(f"model.json: tta_shift must be a whole number of pixels >= 1. "
                                  f"Got {self.tta_shift!r} instead.")
        if not np.isfinite(self.temperature) or self.temperature <= 0:
            raise NeuroclassError(f"model.json: temperature must be a number > 0. "
                                  f"Got {meta.get('temperature')!r} instead.")
        self.device = pick_device(device)
        self.model.to(self.device)

    @classmethod
    def from_run(cls, path: str | Path, device: str = "auto") -> "Predictor":
        path = Path(path)
        if not path.is_dir():
            raise NeuroclassError(f"RUN '{path}': no such run folder; pass a folder made by 'neuroclass train'")
        model, meta = load_model(path)
        return cls(model, meta, path, device)

    @property
    def config(self) -> dict:
        import yaml

        return yaml.safe_load((self.path / "config.yaml").read_text()) if self.path else {}

    @property
    def metrics(self) -> dict:
        return json.loads((self.path / "metrics.json").read_text()) if self.path else {}

    # ------------------------------------------------------------------ inputs -> model tensors
    def prepare_arrays(self, x: np.ndarray, where: str = "input") -> torch.Tensor:
        """Images (N,H,W[,C]) / (N,C,H,W) or rows (N,D) already in the training shape -> tensor."""
        shape = tuple(self.meta["input_shape"])
        if self.meta["kind"] == "table":
            t = torch.from_numpy(features_to_float(np.asarray(x), where))
        else:
            t = torch.from_numpy(images_to_uint8(np.asarray(x), where))
        if tuple(t.shape[1:]) != shape:
            raise NeuroclassError(f"{where}: inputs have shape {tuple(t.shape[1:])} but the model "
                                  f"expects {shape}")
        return t

    def load_files(self, files: list[str | Path]) -> tuple[torch.Tensor, list[str]]:
        """Image files (any size, gray or colour) or CSV/Parquet tables -> (tensor, source names)."""
        if self.meta["kind"] == "table":
            frames, names = [], []
            for f in files:
                path = Path(f)
                if not path.is_file():
                    raise NeuroclassError(f"{path}: file not found")
                df = read_table(path)
                frames.append(encode_features(df, self.meta["preprocessing"], str(path)))
                names += [f"{path.name}:{i}" for i in range(len(df))]
            return torch.from_numpy(np.concatenate(frames)), names
        c, h, w = self.meta["input_shape"]
        arrays = [load_image(f, channels=c, size=(h, w)) for f in files]
        return torch.from_numpy(np.stack(arrays)), [str(f) for f in files]

    # ------------------------------------------------------------------ outputs
    def predict_logits_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K), float32 on the CPU, under the run's test-time augmentation, before the
        temperature."""
        return tta_logits(self.model, x, self.device, self.tta, shift=self.tta_shift)

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """softmax(logits / temperature) as float32 (N, K): the probabilities every command reports.

        >>> predictor.probabilities(predictor.predict_logits_tensor(x))  # doctest: +SKIP
        """
        return torch.softmax(logits / self.temperature, dim=1).numpy()

    def predict_proba_tensor(self, x: torch.Tensor) -> np.ndarray:
        return self.probabilities(self.predict_logits_tensor(x))

    def predict_files(self, files: list[str | Path], top_k: int = 3,
                      abstain_below: float | None = None) -> list[Prediction]:
        x, names = self.load_files(files)
        return self.describe(self.predict_proba_tensor(x), names, top_k, abstain_below)

    def describe(self, proba: np.ndarray, names: list[str], top_k: int,
                 abstain_below: float | None = None) -> list[Prediction]:
        """Predictions with the ``top_k`` classes; a top probability below ``abstain_below`` gives
        the label NOT_SURE (abstained=True) and keeps the top list, so callers still see the guesses.

        >>> predictor.describe(np.array([[0.5, 0.3, 0.2]]), ["x"], 2, abstain_below=0.6)[0].label  # doctest: +SKIP
        'not sure'
        """
        if abstain_below is not None and not 0 <= abstain_below <= 1:
            raise NeuroclassError(f"--abstain-below must be a probability in [0, 1], e.g. 0.8. "
                                  f"Got {abstain_below} instead.")
        k = max(1, min(top_k, len(self.classes)))
        out = []
        for name, row in zip(names, proba):
            order = np.argsort(-row)[:k]
            top = [(self.classes[i], float(row[i])) for i in order]
            abstained = abstain_below is not None and top[0][1] < abstain_below
            out.append(Prediction(name, NOT_SURE if abstained else top[0][0], top[0][1], top, abstained))
        return out


def format_predictions(preds: list[Prediction]) -> str:
    width = max([len(p.source) for p in preds] + [6]) + 2
    lines = [f"{'source':<{width}}{'label':<16}{'prob':>8}  top-k"]
    for p in preds:
        top = ", ".join(f"{c} {q:.3f}" for c, q in p.top)
        lines.append(f"{p.source:<{width}}{p.label:<16}{p.probability:>8.4f}  {top}")
    return "\n".join(lines)

