"""A finished run's data: its own recorded splits, or other labelled data prepared the run's way,
and ``evaluate_run``, the metrics of the run's model on either.

Every command that reads data for a finished run (evaluate, report, embed) goes through here and
``RunFolder.load_data``, so a dataset that changed since training gets the same error everywhere.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from neuroclass import data as data_mod
from neuroclass.config import DataConfig
from neuroclass.data.dataset import encode_labels
from neuroclass.data.labels import label_key, quoted_list
from neuroclass.data.paths import missing_data
from neuroclass.data.pixels import DecodeSettings
from neuroclass.data.table_file import read_table
from neuroclass.errors import NeuroclassError, counted
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.inference import EnsemblePredictor, Predictor, load_predictor
from neuroclass.inference.predictor import encode_rows
from neuroclass.runs import RunFolder


@dataclass
class LabelledInputs:
    """Model inputs with labels: ``x`` (N, C, H, W) uint8 or (N, D) float32, ``y`` int64 (N,)
    indexing ``classes``, and a description for the record."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    what: str


def own_test_split(run: RunFolder) -> LabelledInputs:
    """The test split of the run's own data, as recorded at training time (labels in the run's
    class order). Raises NeuroclassError when the data changed since training."""
    data = run.load_data()
    return test_split_inputs(data, list(data.dataset.classes))


def test_split_inputs(data, classes: list[str]) -> LabelledInputs:
    """The test split of ``data`` (a run's loaded data: ``part`` and ``source``), labels as recorded."""
    part = data.part("test")
    return LabelledInputs(part.x, part.y, classes, f"{data.source} (test split, {counted(len(part), 'example')})")


def evaluation_inputs(run: RunFolder, predictor: Predictor | EnsemblePredictor, own,
                      data: str | None) -> LabelledInputs:
    """What a run is evaluated on: ``data`` in the run's class order when given, else the test
    split of ``own`` (the run's loaded data). Raises NeuroclassError for unreadable data or
    classes the model does not know."""
    return other_data(data, predictor, run) if data else test_split_inputs(own, predictor.classes)


def _table_inputs(source: str, meta: dict, label_column: str | None) -> LabelledInputs:
    """Raw rows encoded with the run's recorded encoding (the schema's raw rows, which the
    Predictor's fitted preprocessing turns into model inputs, or a run's from before per-column
    schemas); labels with the data's own class names."""
    path = Path(source)
    if not path.is_file():
        raise missing_data(source)
    df = read_table(path)
    if label_column not in df.columns:
        raise NeuroclassError(f"DATA '{source}': no label column '{label_column}' (the run's label column)")
    x = encode_rows(df.drop(columns=[label_column]), meta["preprocessing"], source)
    codes, classes = encode_labels(df[label_column].to_numpy(), source)
    return LabelledInputs(torch.from_numpy(x), torch.as_tensor(codes, dtype=torch.int64), classes,
                          f"{source} (all, {counted(len(codes), 'row')})")


def data_inputs(source: str, run: RunFolder, meta: dict, test_part: bool = True) -> LabelledInputs:
    """Labelled data other than the run's own, prepared as the model's inputs (image channels and
    size, or the table's recorded encoding); labels use the data's own class names. With
    ``test_part`` a shipped test split is used alone.

    Example::

        inputs = data_inputs("blocks:n=200,seed=9", run, run.meta())
    """
    if meta["kind"] == "table":
        return _table_inputs(source, meta, run.config().data.label_column)
    shape = tuple(meta["input_shape"])
    decode = DecodeSettings.from_record(meta.get("preprocessing", {}).get("decode"))  # as at training
    dataset = data_mod.load(replace(DataConfig(), source=source, channels=shape[0],
                                    image_size=shape[1] if shape[1] == shape[2] else None,
                                    background=decode.background_text(), max_pixels=decode.max_pixels),
                           decode)
    got = tuple(dataset.input_shape)
    if got != shape:
        fix = (f"give images with {shape[0]} channel(s)" if got[1:] == shape[1:] else
               f"resize them to {shape[1]}x{shape[2]}")
        raise NeuroclassError(f"DATA '{source}': images of shape {got} do not fit the model's {shape}; {fix}")
    use_test = test_part and "test" in dataset.parts
    part = dataset.subset(dataset.parts["test"]) if use_test else dataset
    which = "test split" if use_test else "all"
    return LabelledInputs(part.x, part.y, list(dataset.classes),
                          f"{source} ({which}, {counted(len(part), 'example')})")


def in_run_classes(inputs: LabelledInputs, classes: list[str], source: str) -> LabelledInputs:
    """``inputs`` with labels re-indexed into the run's ``classes``; a label that differs from one
    of them only by surrounding spaces, letter case or Unicode form is read as it (data/labels.py,
    one warning). NeuroclassError naming the classes the model does not know."""
    by_key = {label_key(c): i for i, c in enumerate(classes)}
    index = [classes.index(c) if c in classes else by_key.get(label_key(c), -1) for c in inputs.classes]
    unknown = sorted(c for c, i in zip(inputs.classes, index) if i < 0)
    if unknown:
        raise NeuroclassError(f"DATA '{source}': classes {unknown[:5]} are unknown to the model "
                              f"(it knows {classes})")
    respelled = [(c, classes[i]) for c, i in zip(inputs.classes, index) if c != classes[i]]
    if respelled:
        warnings.warn(f"DATA '{source}': " + "; ".join(
            f"{quoted_list([c])} read as the model's class {quoted_list([k])}" for c, k in respelled),
            stacklevel=3)
    mapping = torch.tensor(index, dtype=torch.int64)
    return LabelledInputs(inputs.x, mapping[inputs.y], list(classes), inputs.what)


def other_data(source: str, predictor: Predictor | EnsemblePredictor, run: RunFolder) -> LabelledInputs:
    """``data_inputs`` with labels in the run's class order, for metrics."""
    return in_run_classes(data_inputs(source, run, predictor.meta), predictor.classes, source)


def evaluate_run(run: str | Path, data: str | None = None) -> tuple[dict, str]:
    """Metrics of the run's model (or an ensemble folder's ensemble) on its test split (default)
    or on ``data``; returns (metrics, what).

    Example::

        metrics, what = evaluate_run("runs/digits-mlp-20260101-120000")
    """
    folder = RunFolder.open(run)
    predictor = load_predictor(folder.path)
    inputs = other_data(data, predictor, folder) if data else own_test_split(folder)
    proba = predictor.predict_proba_tensor(inputs.x)
    return classification_metrics(inputs.y.numpy(), proba, predictor.classes), inputs.what
