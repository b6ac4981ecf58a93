"""A table's 0/1 model inputs (missing-value indicators, one-hot categories) pass the network's input
standardization as they are; runs saved before keep their own statistics."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from neuroclass.config import load_config
from neuroclass.data.normalization import normalization_stats
from neuroclass.data.schema import Schema, encode
from neuroclass.data.table_prep import transform
from neuroclass.inference import Predictor
from neuroclass.pipeline import prepare
from neuroclass.pipeline import train as train_run

N = 200


def rare_gaps(tmp_path):
    """A CSV whose 'age' misses one value in N and 'colour' two: their indicators are rare 1s."""
    rng = np.random.default_rng(0)
    age = rng.normal(40, 10, size=N)
    df = pd.DataFrame({"age": age, "colour": rng.choice(["red", "green", "blue"], size=N, p=[0.9, 0.07, 0.03]),
                       "noise": rng.normal(size=N), "label": np.where(age > 40, "old", "young")})
    df.loc[[5], "age"] = np.nan
    df.loc[[7, 11], "colour"] = np.nan
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    return path


def overrides(path, *more):
    return [f"data.source={path}", "data.label_column=label", "model.name=mlp", "model.options.hidden=[8]",
            "train.device=cpu", "train.epochs=1", "train.quiet=true", *more]


def binary_names(names: list[str]) -> list[int]:
    return [i for i, name in enumerate(names) if name.endswith(" (missing)") or "=" in name]


@pytest.mark.parametrize("more", [(), ("data.select=mutual_info", "data.max_features=4")])
def test_indicators_and_one_hot_columns_are_left_at_0_and_1(tmp_path, more):
    prep = prepare(load_config(overrides=overrides(rare_gaps(tmp_path), *more)))
    names = prep.dataset.preprocessing["feature_names"]
    binary = prep.dataset.preprocessing["table"]["binary_inputs"]
    assert binary == binary_names(names) and binary
    assert prep.mean[0, binary].eq(0).all() and prep.std[0, binary].eq(1).all()
    numbers = [i for i in range(len(names)) if i not in binary]
    assert numbers and not prep.std[0, numbers].eq(1).all()  # the numbers are still standardized
    # a row with every value missing: its standardized inputs stay within a few standard deviations
    empty = pd.DataFrame({"age": [np.nan], "colour": [np.nan], "noise": [np.nan]})
    raw = encode(empty, Schema.from_record(prep.dataset.preprocessing["table"], "row"), "row")
    z = (torch.from_numpy(transform(prep.table_prep, raw)) - prep.mean) / prep.std
    assert float(z.abs().max()) < 4


def test_a_run_saved_with_standardized_indicators_predicts_with_its_own_statistics(tmp_path):
    path = rare_gaps(tmp_path)
    run = train_run(load_config(overrides=overrides(path, f"out={tmp_path / 'runs'}")), report=False).path
    prep = prepare(load_config(overrides=overrides(path)))
    old_mean, old_std = normalization_stats(prep.splits.train.x)  # what the run would have saved before
    weights = load_file(run / "model.safetensors")
    (mean_key,) = [k for k in weights if k.endswith(".mean")]
    (std_key,) = [k for k in weights if k.endswith(".std")]
    assert not torch.equal(weights[std_key], old_std.float().clamp_min(1e-6))  # the new run's differ
    weights[mean_key], weights[std_key] = old_mean.float(), old_std.float().clamp_min(1e-6)
    save_file(weights, run / "model.safetensors", metadata={"format": "pt"})
    meta = json.loads((run / "model.json").read_text())
    del meta["preprocessing"]["table"]["binary_inputs"]  # a model.json written before the record
    (run / "model.json").write_text(json.dumps(meta))

    predictor = Predictor.from_run(run)
    x = predictor.model_inputs(prep.dataset.x[:20])
    standardize = next(m for m in predictor.model.modules() if hasattr(m, "mean") and hasattr(m, "std"))
    assert torch.equal(standardize.mean, old_mean.float()) and torch.equal(standardize.std, weights[std_key])
    logits = predictor.predict_logits_tensor(prep.dataset.x[:20])
    with torch.inference_mode():
        expected = predictor.model(x)
    assert torch.allclose(logits, expected.cpu(), atol=1e-6)
