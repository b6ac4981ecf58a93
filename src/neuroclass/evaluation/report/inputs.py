"""Everything a report reads: the run folder's files (through RunFolder), its data re-split as
recorded, and logits.

Loading is kept apart from the numbers (collect.py) and the page (html.py) so that each can be read
and tested on its own; all model passes happen here, once. A report written by the training process
takes the data and logits that training holds already (``FromTraining``) instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from neuroclass.config import Config
from neuroclass.data.dataset import Dataset
from neuroclass.data.issues import DataIssues
from neuroclass.evaluation.evaluate import evaluation_inputs
from neuroclass.inference import Predictor
from neuroclass.runs import RunData, RunFolder

TABLE_FILES = (".csv", ".parquet", ".pq")  # data files whose rows the report names by their place in the file


@dataclass
class FromTraining:
    """What a run's training process holds when it writes the report: its data and split (as the
    run folder records them) and the logits under the run's inference policy, before the
    temperature, of its test split (N_test, K) and validation split (N_val, K; None without one)."""

    data: RunData
    test_logits: torch.Tensor
    val_logits: torch.Tensor | None


@dataclass
class ReportInputs:
    """One run, ready to report on. ``eval_*`` is the run's test split, or the --data evaluation set."""

    run: Path
    predictor: Predictor  # an EnsemblePredictor for an ensemble folder (report/ensemble.py)
    cfg: Config
    config_text: str  # config.yaml as written, shown verbatim in the Reproduce section
    environment: dict
    timing: dict
    split_record: dict  # split.json
    history: list[dict]  # metrics.csv rows, numbers as float (None where empty)
    dataset: Dataset  # the run's own data, as loaded now
    indices: dict[str, np.ndarray]  # split.npz: positions of train / val / test in ``dataset``
    data_hash_matches: bool | None  # True (a changed dataset is an error); None when no hash was recorded
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_what: str  # e.g. "fashion-mnist (test split, 10000 examples)"
    eval_data: str | None  # the --data source, None for the run's own test split
    eval_logits: torch.Tensor  # (N, K) raw logits, before the temperature
    val_logits: torch.Tensor | None  # (N_val, K) on the run's validation split
    # data_issues.json: what loading and splitting found when the run trained (empty for a run
    # folder from before the file existed)
    data_issues: DataIssues = field(default_factory=DataIssues)
    # a table's rows as the file holds them (encoded, before the fitted preprocessing), for the
    # column summary; None for images
    raw_x: torch.Tensor | None = None

    @property
    def classes(self) -> list[str]:
        return self.predictor.classes

    @property
    def kind(self) -> str:
        return self.predictor.meta["kind"]

    @property
    def eval_file(self) -> str | None:
        """The table file (CSV or Parquet) the evaluated rows were read from, or None: images,
        arrays, built-in data."""
        source = self.eval_data or self.dataset.source
        return source if self.kind == "table" and Path(source).suffix.lower() in TABLE_FILES else None

    def file_rows(self, positions: Sequence[int]) -> list[int] | None:
        """The data rows of ``eval_file`` that the evaluated examples at ``positions`` (0-based, in
        ``eval_x``) are, counted from 1 as messages about a table file count them
        (data/table_file.row_places: the first row after the header is 1); None without a file.

        The run's test split holds rows of its data at the positions split.npz records; --data
        rows are the file's, in order (no row is dropped when a table is read)."""
        if self.eval_file is None:
            return None
        rows = np.asarray(positions, dtype=np.int64)
        if self.eval_data is None:
            rows = np.asarray(self.indices["test"], dtype=np.int64)[rows]
        return [int(r) + 1 for r in rows]

    def with_file_rows(self, examples: list[dict]) -> list[dict]:
        """``examples`` (each with its "index" in ``eval_x``) with "row": its data row in
        ``eval_file`` (``file_rows``), None without a file."""
        rows = self.file_rows([e["index"] for e in examples])
        return [{**e, "row": None if rows is None else rows[k]} for k, e in enumerate(examples)]


def load_inputs(run: str | Path, data: str | None = None, known: FromTraining | None = None) -> ReportInputs:
    """Read ``run``, reload its data, rebuild its splits, and compute the logits the report needs
    (``known``: the data and logits of the process that trained the run, used as they are; not
    with ``data``). Raises NeuroclassError for an incomplete folder or data that changed since training.

    Example::

        inputs = load_inputs("runs/fashion-mnist-cnn-20260101-120000")
        inputs.eval_logits.shape
        # -> torch.Size([10000, 10])
    """
    folder = RunFolder.open(run)
    predictor = Predictor.from_folder(folder)  # a clear error for a missing or incomplete folder
    environment = folder.environment()
    # the loader's warnings (e.g. unreadable files skipped) were shown when the run trained; the
    # report records the skipped count instead of repeating them after `train`
    known = None if data else known  # other data: logits of its own
    own = known.data if known is not None else folder.load_data(quiet=True)
    evaluated = evaluation_inputs(folder, predictor, own, data)
    val = own.part("val")
    if known is not None:
        eval_logits, val_logits = known.test_logits, known.val_logits if len(val) else None
    else:
        eval_logits = predictor.predict_logits_tensor(evaluated.x)
        val_logits = predictor.predict_logits_tensor(val.x) if len(val) else None
    # the sections that look at inputs (features, duplicates, dead units) see the model's: a
    # table's raw rows through the run's fitted preprocessing
    dataset = replace(own.dataset, x=predictor.model_inputs(own.dataset.x))
    return ReportInputs(
        run=folder.path, predictor=predictor, cfg=folder.config(), config_text=folder.config_text(),
        environment=environment, timing=folder.timing(), split_record=folder.split_record(),
        history=folder.history(), dataset=dataset, indices=own.indices,
        data_hash_matches=True if environment.get("data_hash") else None,
        eval_x=predictor.model_inputs(evaluated.x), eval_y=evaluated.y, eval_what=evaluated.what, eval_data=data,
        eval_logits=eval_logits, val_logits=val_logits,
        data_issues=folder.read_data_issues(),
        raw_x=own.dataset.x if own.dataset.kind == "table" else None)
