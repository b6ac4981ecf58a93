"""What explain looks at: a finished neural run's Predictor and one input, an example of the run's
test split (with its label) or a file decoded as ``neuroclass predict`` decodes it (with the label
the caller gives, if any). Every refusal is one NeuroclassError line naming the field and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuroclass.errors import NeuroclassError, counted, with_article
from neuroclass.evaluation.report.importance import feature_labels
from neuroclass.inference import Predictor
from neuroclass.models.layers import Classifier
from neuroclass.runs import RunFolder, is_ensemble_folder
from neuroclass.runs.glassbox_module import GlassboxModule


@dataclass
class Example:
    """One input as the Predictor takes it: ``x`` (1, C, H, W) uint8 image or (1, D_raw) float32
    table row as data.load / ``Predictor.load_files`` give it; ``label``: its class index, or None;
    ``source``: what it is, in words; ``slug``: a file-name-safe name for it; ``row``: which data
    row of a table file it is (counted from 0), None for an image or a test example."""

    x: torch.Tensor
    label: int | None
    source: str
    slug: str
    row: int | None = None  # the data row of a table file, counted from 0


def open_neural_run(run: str | Path, device: str = "auto") -> tuple[RunFolder, Predictor]:
    """The run folder and its Predictor (a torch Classifier, or the NumPy GlassboxModule). Raises
    NeuroclassError for a missing or incomplete folder, an ensemble folder, or a run of a classical
    family (whose model has no layers to show).

    Example::

        folder, predictor = open_neural_run("runs/digits-mlp-20260101-120000")
    """
    folder = RunFolder.open(run)  # a missing folder or one without model.json fails here
    if is_ensemble_folder(folder.path):
        raise NeuroclassError(f"RUN '{run}': an ensemble of runs, not one network; explain one of its "
                              "members (listed in its ensemble.json)")
    predictor = Predictor.from_folder(folder, device)
    if not isinstance(predictor.model, (Classifier, GlassboxModule)):
        raise not_neural_error(run, predictor.meta.get("family", "classical"))
    return folder, predictor


def not_neural_error(run: str | Path, family: str) -> NeuroclassError:
    """The one line that refuses ``run``, a run of ``family`` whose model has no layers to show,
    and points at its report's permutation importance.

    >>> str(not_neural_error("runs/r", "xgboost")).split(";")[0]
    "RUN 'runs/r': an xgboost run"
    """
    return NeuroclassError(f"RUN '{run}': {with_article(family)} run; explain covers neural families (mlp, cnn, "
                           f"resnet, glassbox, ...); for what drives {with_article(family)} model see the "
                           f"permutation importance section of its report (neuroclass report {run})")


def pick_example(folder: RunFolder, predictor: Predictor, file: str | Path | None = None,
                 index: int | None = None, label: str | None = None, row: int | None = None) -> Example:
    """``file`` (an image, or a CSV/Parquet whose data row ``row`` is taken, counted from 0,
    default 0) with the class name ``label`` if given, or else example ``index`` (default 0) of the
    run's test split with its own label. Raises NeuroclassError for both or an index out of range,
    a label that is not a class, ``label`` without ``file``, ``row`` without a table file or
    outside its rows."""
    if file is not None and index is not None:
        raise NeuroclassError("FILE and --index: give one of them (a file of your own, or the index of "
                              "an example of the run's test split)")
    if file is None:
        if label is not None:
            raise NeuroclassError("--label: an example of the test split has its own label; give --label "
                                  "with FILE only")
        if row is not None:
            raise NeuroclassError("--row: picks a data row of a table FILE; for the run's test split use --index")
        return _test_example(folder, 0 if index is None else index)
    if row is not None and predictor.kind != "table":
        raise NeuroclassError(f"--row {row}: FILE '{file}' is an image, one input; drop --row")
    x, names = predictor.load_files([file])  # decoded as `neuroclass predict` decodes it
    if predictor.kind != "table":
        return Example(x[:1], _label_index(predictor.classes, label), names[0], _slug(Path(file).stem))
    at = 0 if row is None else row
    if not 0 <= at < len(x):
        rows = f"pass a row from 0 to {len(x) - 1} (counted from 0, the header not counted)" if len(x) else \
            "give a file with at least one data row"
        raise NeuroclassError(f"--row {at}: FILE '{file}' has {counted(len(x), 'data row')}; {rows}")
    slug = _slug(Path(file).stem) + (f"-row{at}" if len(x) > 1 else "")
    return Example(x[at:at + 1], _label_index(predictor.classes, label),
                   f"row {at} of {Path(file).name} (counted from 0; the file has {counted(len(x), 'data row')})",
                   slug, at)


def _test_example(folder: RunFolder, index: int) -> Example:
    own = folder.load_data(quiet=True)
    test = own.part("test")
    if len(test) == 0:
        raise NeuroclassError(f"--index: run '{folder.path}' has no test split; pass FILE to explain "
                              "an input of your own")
    if not 0 <= index < len(test):
        raise NeuroclassError(f"--index {index}: the run's test split has {len(test)} examples; pass "
                              f"an index from 0 to {len(test) - 1}")
    return Example(test.x[index:index + 1], int(test.y[index]),
                   f"test example {index} of {own.source}", f"test-{index}")


def _label_index(classes: list[str], label: str | None) -> int | None:
    if label is None:
        return None
    if label not in classes:
        shown = ", ".join(classes[:20]) + (", ..." if len(classes) > 20 else "")
        raise NeuroclassError(f"--label '{label}': not a class of this run; pass one of {shown}")
    return classes.index(label)


def _slug(stem: str) -> str:
    """A file-name-safe form of a file's stem.

    >>> _slug("my shirt (2)")
    'my_shirt_2'
    """
    kept = "".join(c if c.isalnum() or c in "-." else "_" for c in stem)
    return "_".join(part for part in kept.split("_") if part) or "input"


def input_names(shape: tuple[int, ...], preprocessing: dict) -> list[str]:
    """Names of the entries of the network's input of ``shape``, flattened in C, H, W order:
    "(row r, col c)" for a grey image, "(channel k, row r, col c)" for a colour one, a table's
    feature names from model.json's ``preprocessing`` record ("feature i" where it has none).

    >>> input_names((1, 1, 2), {}), input_names((2,), {"feature_names": ["age", "income"]})
    (['(row 0, col 0)', '(row 0, col 1)'], ['age', 'income'])
    """
    if len(shape) == 1:
        return feature_labels(preprocessing, shape[0])
    c, h, w = shape
    if c == 1:
        return [f"(row {r}, col {k})" for r in range(h) for k in range(w)]
    return [f"(channel {ch}, row {r}, col {k})" for ch in range(c) for r in range(h) for k in range(w)]


def seen_input(predictor: Predictor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(network input, baseline) on the predictor's device: ``x`` through the run's table
    preprocessing (tables) and the model's standardization, float32 (1, ...); the baseline is a
    black image, or all features 0 after the run's preprocessing, standardized the same way."""
    model = predictor.model
    inputs = predictor.model_inputs(x).to(predictor.device)
    with torch.no_grad():
        seen = model.standardize(inputs).float()
        base = model.standardize(torch.zeros_like(inputs)).float()
    return seen.contiguous(), base.contiguous()


def baseline_words(kind: str, embedded: bool = False) -> str:
    """The baseline of integrated gradients for inputs of ``kind`` ("image" or "table"), in words;
    ``embedded``: a table whose categorical columns reach the network as codes it embeds."""
    if kind == "image":
        return "a black image"
    if embedded:
        return ("the numbers at 0 after the run's preprocessing and every categorical column at no category "
                "(the zero vector the network gives a category the training file did not hold)")
    return "all features at 0 after the run's preprocessing"


def pixels(x: torch.Tensor) -> np.ndarray:
    """The example as a picture (C, H, W) uint8, or its raw row (D,) float32 for a table."""
    return x[0].cpu().numpy()
