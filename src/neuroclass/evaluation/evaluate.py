"""Evaluate a finished run: on its own recorded test split, or on other labelled data."""
from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from neuroclass import data as data_mod
from neuroclass.config import DataConfig, load_config
from neuroclass.data.table import encode_features, read_table
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.serving.predictor import Predictor


def _own_test_split(run: Path) -> tuple[torch.Tensor, torch.Tensor, str]:
    cfg = load_config(run / "config.yaml")
    dataset = data_mod.load(cfg.data)
    recorded = json.loads((run / "environment.json").read_text()).get("data_hash")
    if recorded and recorded != dataset.content_hash():
        warnings.warn(f"{cfg.data.source}: data changed since the run was trained "
                      "(content hash differs); the recorded test split may not match", stacklevel=2)
    with np.load(run / "split.npz", allow_pickle=False) as split:
        test = split["test"]
    if len(test) and test.max() >= len(dataset):
        raise NeuroclassError(f"{run}/split.npz: test indices exceed the {len(dataset)} examples of "
                              f"{cfg.data.source}; pass --data to evaluate on other data")
    part = dataset.subset(test)
    return part.x, part.y, f"{cfg.data.source} (test split, {len(part)} examples)"


def _map_labels(names: list[str], predictor: Predictor, source: str) -> torch.Tensor:
    unknown = sorted({c for c in names if c not in predictor.classes})
    if unknown:
        raise NeuroclassError(f"DATA '{source}': classes {unknown[:5]} are unknown to the model "
                              f"(it knows {predictor.classes})")
    return torch.tensor([predictor.classes.index(c) for c in names], dtype=torch.int64)


def _other_table(source: str, predictor: Predictor, label_column: str | None) -> tuple:
    """Raw rows encoded with the run's own recorded encoding, labels matched by name."""
    path = Path(source)
    if not path.is_file():
        raise NeuroclassError(f"DATA '{source}': file not found")
    df = read_table(path)
    if label_column not in df.columns:
        raise NeuroclassError(f"DATA '{source}': no label column '{label_column}' (the run's label column)")
    x = encode_features(df.drop(columns=[label_column]), predictor.meta["preprocessing"], source)
    labels = df[label_column].to_numpy()
    if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    y = _map_labels([str(v) for v in labels], predictor, source)
    return torch.from_numpy(x), y, f"{source} (all, {len(y)} rows)"


def other_data(source: str, predictor: Predictor, run: Path) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Labelled data other than the run's own, as model inputs: (x, y in the run's class order, what).

    >>> x, y, what = other_data("blocks:n=200,seed=9", predictor, run)  # doctest: +SKIP
    """
    cfg = load_config(run / "config.yaml").data
    if predictor.meta["kind"] == "table":
        return _other_table(source, predictor, cfg.label_column)
    shape = tuple(predictor.meta["input_shape"])
    square = shape[1] == shape[2]
    dataset = data_mod.load(replace(DataConfig(), source=source, channels=shape[0],
                                    image_size=shape[1] if square else None))
    mapping = _map_labels(dataset.classes, predictor, source)
    part = dataset.subset(dataset.parts["test"]) if "test" in dataset.parts else dataset
    if tuple(part.x.shape[1:]) != shape:
        raise NeuroclassError(f"DATA '{source}': images of shape {tuple(part.x.shape[1:])} do not fit "
                              f"the model's {shape}")
    which = "test split" if "test" in dataset.parts else "all"
    return part.x, mapping[part.y], f"{source} ({which}, {len(part)} examples)"


def evaluate_run(run: str | Path, data: str | None = None) -> tuple[dict, str]:
    """Metrics of the run's model on its test split (default) or on ``data``; returns (metrics, what).

    >>> metrics, what = evaluate_run("runs/digits-mlp-20260101-120000")  # doctest: +SKIP
    """
    run = Path(run)
    predictor = Predictor.from_run(run)
    x, y, what = (other_data(data, predictor, run) if data else _own_test_split(run))
    proba = predictor.predict_proba_tensor(x)
    return classification_metrics(y.numpy(), proba, predictor.classes), what
