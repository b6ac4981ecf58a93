"""Table preprocessing fitted on the training split only: imputation, scaling, one-hot encoding and
feature selection (data/table_prep.py), wired into pipeline.prepare and saved as preprocess.skops."""
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from neuroclass.config import DataConfig, load_config
from neuroclass.data import load
from neuroclass.data.schema import Schema
from neuroclass.data.table_prep import PREPROCESS_FILE, feature_names, fit_preprocessing, transform
from neuroclass.errors import NeuroclassError
from neuroclass.pipeline import prepare
from neuroclass.runs.preprocess_file import load_preprocess, save_preprocess

N = 120


def table(tmp_path, n: int = N, seed: int = 0):
    """A CSV: 'age' with gaps, 'colour' with gaps, a noise column, and a label that follows age."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, size=n)
    df = pd.DataFrame({"age": age, "colour": rng.choice(["red", "green", "blue"], size=n),
                       "noise": rng.normal(size=n), "label": np.where(age > 40, "old", "young")})
    df.loc[rng.choice(n, size=12, replace=False), "age"] = np.nan
    df.loc[rng.choice(n, size=9, replace=False), "colour"] = np.nan
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    return path


def prepared(path, *overrides):
    cfg = load_config(overrides=[f"data.source={path}", "data.label_column=label", "model.name=mlp",
                                 "train.device=cpu", *overrides])
    return prepare(cfg)


def steps(prep):
    columns = prep.table_prep.named_steps["columns"]
    return columns.named_transformers_["numbers"], columns


def test_imputation_and_scaling_learn_from_the_training_split_only(tmp_path):
    path = table(tmp_path)
    df = pd.read_csv(path)
    first = prepared(path)
    held_out = np.concatenate([first.splits.indices["val"], first.splits.indices["test"]])
    df.loc[held_out, "age"] = 1e6  # extreme rows outside training: the statistics must not move
    df.loc[held_out, "noise"] = -1e6
    df.to_csv(path, index=False)
    prep = prepared(path)
    train = prep.splits.indices["train"]
    assert np.array_equal(train, first.splits.indices["train"])
    numbers, _ = steps(prep)
    rows = df.loc[train, ["age", "noise"]].to_numpy()
    medians = np.nanmedian(rows, axis=0)
    assert np.allclose(numbers.named_steps["impute"].statistics_, medians, rtol=1e-5)
    filled = np.where(np.isnan(rows), medians, rows)
    assert np.allclose(numbers.named_steps["scale"].mean_, filled.mean(axis=0), rtol=1e-4)
    assert abs(float(prep.splits.train.x[:, 0].mean())) < 1e-4  # standardized by the training rows
    assert float(prep.splits.test.x[:, 0].max()) > 1e3  # the extreme rows are far out, not absorbed


def test_the_model_inputs_and_their_names(tmp_path):
    prep = prepared(table(tmp_path))
    names = prep.dataset.preprocessing["feature_names"]
    assert names == ["age", "noise", "age (missing)", "colour=blue", "colour=green", "colour=red",
                     "colour (missing)"]
    x = prep.splits.train.x
    assert x.dtype.is_floating_point and tuple(x.shape) == (len(prep.splits.train), len(names))
    assert bool(x.isfinite().all()) and prep.input_shape == (len(names),)
    onehot = x[:, 3:6].numpy()
    missing_colour = x[:, 6].numpy() == 1
    assert (onehot.sum(1) == 1).all()  # a missing colour is filled with the most frequent one
    assert missing_colour.any() and set(np.unique(x[:, 2].numpy())) == {0.0, 1.0}
    table_record = prep.dataset.preprocessing["table"]
    assert table_record["transformer"] == PREPROCESS_FILE and table_record["scaling"] == "standard"
    assert table_record["fitted_rows"] == len(prep.splits.train)
    assert tuple(prep.dataset.x.shape) == (N, 3)  # the dataset keeps its raw rows


@pytest.mark.parametrize("scaling, check", [
    ("minmax", lambda c: c.min() == pytest.approx(0) and c.max() == pytest.approx(1)),
    ("robust", lambda c: np.median(c) == pytest.approx(0, abs=1e-6)),
    ("none", lambda c: c.max() > 30),
])
def test_each_scaling(tmp_path, scaling, check):
    prep = prepared(table(tmp_path), f"data.scaling={scaling}")
    assert check(prep.splits.train.x[:, 0].numpy())


def test_missing_error_has_no_imputer_and_refuses_gaps(tmp_path):
    path = tmp_path / "full.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=60), "c": ["x", "y", "z"] * 20,
                  "label": ["p", "q"] * 30}).to_csv(path, index=False)
    prep = prepared(path, "data.missing=error")
    assert prep.dataset.preprocessing["feature_names"] == ["a", "c=x", "c=y", "c=z"]
    assert "impute" not in steps(prep)[0].named_steps
    with pytest.raises(NeuroclassError, match="column 'age' has a missing value in 12 rows"):
        prepared(table(tmp_path), "data.missing=error")


@pytest.mark.parametrize("select", ["mutual_info", "l1"])
def test_feature_selection_keeps_at_most_max_features(tmp_path, select):
    prep = prepared(table(tmp_path), f"data.select={select}", "data.max_features=2")
    names = prep.dataset.preprocessing["feature_names"]
    assert 1 <= len(names) <= 2 and "age" in names  # the label follows age
    assert prep.splits.train.x.shape[1] == len(names)


def test_selection_settings_are_checked_together():
    with pytest.raises(NeuroclassError, match="data.select=mutual_info needs data.max_features"):
        load_config(overrides=["data.select=mutual_info"])
    with pytest.raises(NeuroclassError, match="data.max_features=3 takes effect only with data.select"):
        load_config(overrides=["data.max_features=3"])
    with pytest.raises(NeuroclassError, match="Did you mean 'robust'"):
        load_config(overrides=["data.scaling=robst"])


def test_each_fold_fits_its_own(tmp_path):
    path = table(tmp_path)
    medians = [steps(prepared(path, "data.folds=3", f"data.fold={k}"))[0].named_steps["impute"].statistics_
               for k in (1, 2)]
    assert not np.allclose(medians[0], medians[1])


def test_the_schema_and_the_fit_are_the_first_log_lines(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="neuroclass"):
        prepared(table(tmp_path))
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("neuroclass.data")]
    assert lines[0].endswith("t.csv: 3 feature columns: numeric age, noise; categorical colour (3 categories)")
    assert lines[1].startswith("preprocessing fitted on the training split (")
    assert "7 model inputs from 3 encoded columns" in lines[1]


def test_skops_round_trip_and_untrusted_types_are_refused(tmp_path):
    prep = prepared(table(tmp_path))
    save_preprocess(tmp_path, prep.table_prep)
    again = load_preprocess(tmp_path)
    x = prep.dataset.x
    assert np.array_equal(transform(again, x), transform(prep.table_prep, x))
    save_preprocess(tmp_path, Pipeline([("call", FunctionTransformer(func=print))]))
    with pytest.raises(NeuroclassError, match=r"holds types a table preprocessing never has \(builtins.print\)"):
        load_preprocess(tmp_path)
    (tmp_path / PREPROCESS_FILE).write_bytes(b"not a zip file")
    with pytest.raises(NeuroclassError, match="cannot read the run's table preprocessing"):
        load_preprocess(tmp_path)


def test_rows_of_another_width_are_refused(tmp_path):
    ds = load(DataConfig(source=str(table(tmp_path)), label_column="label"))
    schema = Schema.from_record(ds.preprocessing["table"], "t.csv")
    pipe = fit_preprocessing(ds.x.numpy(), ds.y.numpy(), schema, DataConfig(), 0)
    assert len(feature_names(pipe, schema)) == pipe.transform(ds.x.numpy()).shape[1]
    with pytest.raises(NeuroclassError, match="rows of 2 encoded columns but the run's preprocessing expects 3"):
        transform(pipe, ds.x[:, :2], "rows")
