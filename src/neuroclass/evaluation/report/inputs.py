"""Everything a report reads: the run folder's files, its data re-split as recorded, and logits.

Loading is kept apart from the numbers (collect.py) and the page (html.py) so that each can be read
and tested on its own; all model passes happen here, once.
"""
from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuroclass import data as data_mod
from neuroclass.config import Config, load_config
from neuroclass.data.dataset import Dataset
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.evaluate import other_data
from neuroclass.serving.predictor import Predictor


@dataclass
class ReportInputs:
    """One run, ready to report on. ``eval_*`` is the run's test split, or the --data evaluation set."""

    run: Path
    predictor: Predictor
    cfg: Config
    config_text: str  # config.yaml as written, shown verbatim in the Reproduce section
    environment: dict
    timing: dict
    split_record: dict  # split.json
    history: list[dict]  # metrics.csv rows, numbers as float (None where empty)
    dataset: Dataset  # the run's own data, as loaded now
    indices: dict[str, np.ndarray]  # split.npz: positions of train / val / test in ``dataset``
    data_hash_matches: bool | None  # None when the run recorded no hash
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_what: str  # e.g. "fashion-mnist (test split, 10000 examples)"
    eval_data: str | None  # the --data source, None for the run's own test split
    eval_logits: torch.Tensor  # (N, K) raw logits, before the temperature
    val_logits: torch.Tensor | None  # (N_val, K) on the run's validation split

    @property
    def classes(self) -> list[str]:
        return self.predictor.classes

    @property
    def kind(self) -> str:
        return self.predictor.meta["kind"]


def read_json(path: Path) -> dict:
    """A run file as a dict, or a NeuroclassError naming the file."""
    if not path.is_file():
        raise NeuroclassError(f"{path}: missing; pass a complete run folder made by 'neuroclass train'")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise NeuroclassError(f"{path}: not valid JSON ({exc})") from None


def read_history(path: Path) -> list[dict]:
    """metrics.csv as a list of dicts with float values (None where a value is empty).

    >>> read_history(Path("runs/x/metrics.csv"))[0]["loss"]  # doctest: +SKIP
    0.61
    """
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
                for row in csv.DictReader(fh)]


def read_indices(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise NeuroclassError(f"{path}: missing; pass a complete run folder made by 'neuroclass train'")
    with np.load(path, allow_pickle=False) as split:
        return {name: split[name].astype(np.int64) for name in split.files}


def data_slug(source: str) -> str:
    """A file-name-safe name for a data source, for report-<slug>.html.

    >>> data_slug("blocks:n=200,seed=9"), data_slug("/data/shoes/test/")
    ('blocks_n_200_seed_9', 'test')
    """
    name = Path(source.rstrip("/\\")).name or "data"
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_.") or "data"


def load_inputs(run: str | Path, data: str | None = None) -> ReportInputs:
    """Read ``run``, reload its data, rebuild its splits, and compute the logits the report needs.

    >>> inputs = load_inputs("runs/fashion-mnist-cnn-20260101-120000")  # doctest: +SKIP
    >>> inputs.eval_logits.shape  # doctest: +SKIP
    torch.Size([10000, 10])
    """
    run = Path(run)
    predictor = Predictor.from_run(run)  # a clear error for a missing or incomplete folder
    cfg = load_config(run / "config.yaml")
    environment = read_json(run / "environment.json")
    indices = read_indices(run / "split.npz")
    with warnings.catch_warnings():
        # the loader's warnings (e.g. unreadable files skipped) were shown when the run trained;
        # the report records the skipped count instead of repeating them after `train`
        warnings.simplefilter("ignore")
        dataset = data_mod.load(cfg.data)
    recorded = environment.get("data_hash")
    matches = None if not recorded else recorded == dataset.content_hash()
    if matches is False:
        warnings.warn(f"{cfg.data.source}: data changed since the run was trained (content hash "
                      "differs); the recorded splits may not match", stacklevel=2)
    largest = max((int(i.max()) for i in indices.values() if len(i)), default=-1)
    if largest >= len(dataset):
        raise NeuroclassError(f"{run}/split.npz: indices exceed the {len(dataset)} examples of "
                              f"{cfg.data.source}; the run's data has changed")
    if data:
        eval_x, eval_y, what = other_data(data, predictor, run)
    else:
        test = dataset.subset(indices["test"])
        eval_x, eval_y = test.x, test.y
        what = f"{cfg.data.source} (test split, {len(test)} examples)"
    val_index = indices.get("val", np.zeros(0, dtype=np.int64))
    val_logits = (predictor.predict_logits_tensor(dataset.x[torch.as_tensor(val_index)])
                  if len(val_index) else None)
    return ReportInputs(
        run=run, predictor=predictor, cfg=cfg, config_text=(run / "config.yaml").read_text(),
        environment=environment, timing=read_json(run / "timing.json"),
        split_record=read_json(run / "split.json"), history=read_history(run / "metrics.csv"),
        dataset=dataset, indices=indices, data_hash_matches=matches, eval_x=eval_x, eval_y=eval_y,
        eval_what=what, eval_data=data, eval_logits=predictor.predict_logits_tensor(eval_x),
        val_logits=val_logits)
