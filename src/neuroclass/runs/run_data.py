"""A run's own data, loaded again from its config and checked against what the run recorded:
the content hash of the data it trained on and the split indices (RunFolder.load_data)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neuroclass import data as data_mod
from neuroclass.data.dataset import Dataset
from neuroclass.data.table import older_table_record
from neuroclass.errors import NeuroclassError

if TYPE_CHECKING:  # the folder calls this module; only its type is needed here
    from neuroclass.runs.folder import RunFolder


@dataclass
class RunData:
    """A run's own data as loaded now, checked against the run's record, with its split indices."""

    dataset: Dataset
    indices: dict[str, np.ndarray]  # positions of train / val / test in ``dataset``
    source: str

    def part(self, name: str) -> Dataset:
        """The examples of split ``name`` ("train", "val" or "test")."""
        return self.dataset.subset(self.indices.get(name, np.zeros(0, dtype=np.int64)))


def load_run_data(run: "RunFolder", quiet: bool = False) -> RunData:
    """``run``'s own data, loaded again from its config and checked against the content hash
    recorded at training time. ``quiet``: hide the loader's warnings (shown when it trained).

    Raises NeuroclassError, naming both hashes and what to do, when the data has changed since
    training (the recorded splits would select other examples)."""
    cfg = run.config()
    recorded_table = older_table_record(run.read_json("model.json"))  # read as that run read it
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        dataset = data_mod.load(cfg.data, table_record=recorded_table)
    recorded = run.environment().get("data_hash")
    current = dataset.content_hash()
    if recorded and recorded != current:
        raise NeuroclassError(
            f"{cfg.data.source}: the data changed since run '{run.path}' was trained (content "
            f"hash {recorded[:16]} then, {current[:16]} now), so its recorded splits no longer "
            f"select the same examples; train a new run on it, or treat it as other data "
            f"('neuroclass evaluate RUN --data {cfg.data.source}', 'neuroclass embed RUN "
            f"{cfg.data.source}'), knowing that it may hold the examples the model trained on")
    indices = run.split_indices()
    largest = max((int(i.max()) for i in indices.values() if len(i)), default=-1)
    if largest >= len(dataset):
        raise NeuroclassError(f"{run.file('split.npz')}: indices exceed the {len(dataset)} examples of "
                              f"{cfg.data.source}; the run's data has changed; pass --data to use other data")
    return RunData(dataset, indices, cfg.data.source)
