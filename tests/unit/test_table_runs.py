"""Table runs end to end: the schema and the fitted preprocessing saved with the run, prediction on
raw CSV rows that repeats them exactly, unseen categories, run folders from before per-column
schemas, bad tables through the CLI, and Palmer penguins trained without declaring anything."""
import importlib.resources
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.evaluate import evaluate_run
from neuroclass.inference import Predictor
from neuroclass.pipeline import build, finalize, fit, prepare, process_state, write_run
from neuroclass.runs import RunFolder

N = 160
TINY = ["model.name=mlp", "model.options.hidden=[16]", "train.epochs=2", "train.device=cpu", "train.quiet=true"]


def mixed_table(path, n: int = N):
    """Numbers with gaps, categories with gaps, a date, a boolean, an ID and a label of two classes."""
    rng = np.random.default_rng(0)
    age = rng.normal(40, 10, size=n)
    df = pd.DataFrame({"id": np.arange(1, n + 1), "age": age,
                       "colour": rng.choice(["red", "green", "blue"], size=n),
                       "joined": [f"20{10 + i % 12}-{1 + i % 12:02d}-{1 + i % 27:02d}" for i in range(n)],
                       "member": rng.choice([True, False], size=n),
                       "label": np.where(age > 40, "old", "young")})
    df.loc[rng.choice(n, size=15, replace=False), "age"] = np.nan
    df.loc[rng.choice(n, size=10, replace=False), "colour"] = np.nan
    df.to_csv(path, index=False)
    return path


def train_kept(tmp_path, source, *overrides):
    """Train through the pipeline's steps into a run folder; (run path, Prepared, Finished)."""
    cfg = load_config(overrides=[f"data.source={source}", "data.label_column=label",
                                 f"out={tmp_path / 'runs'}", *TINY, *overrides])
    with process_state(cfg):
        prep = prepare(cfg)
        model, tuning = build(prep)
        done = finalize(prep, model, fit(prep, model, tuning))
        path = write_run(RunFolder.create(cfg.out, "run"), prep, done)
    return path, prep, done


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixed")
    return (tmp, *train_kept(tmp, mixed_table(tmp / "t.csv")))


def test_predicting_the_raw_test_rows_gives_the_runs_test_probabilities(mixed_run):
    tmp, path, prep, done = mixed_run
    rows = tmp / "rows.csv"
    raw = pd.read_csv(tmp / "t.csv")
    raw.iloc[prep.splits.indices["test"]].drop(columns=["label"]).to_csv(rows, index=False)
    predictor = Predictor.from_run(path)
    proba = predictor.predict_proba_tensor(predictor.load_files([rows])[0])
    expected = done.policy.probabilities(done.test_logits)
    assert proba.shape == expected.shape and np.allclose(proba, expected, atol=1e-6)
    metrics, _ = evaluate_run(path)  # the run's own test split, reloaded
    assert metrics["accuracy"] == pytest.approx(json.loads((path / "metrics.json").read_text())["accuracy"])


def test_the_run_records_the_schema_and_saves_the_fitted_preprocessing(mixed_run):
    _, path, _, _ = mixed_run
    meta = json.loads((path / "model.json").read_text())
    assert meta["format_version"] == 3 and (path / "preprocess.skops").is_file()
    prep = meta["preprocessing"]
    table = prep["table"]
    assert [(c["name"], c["kind"]) for c in table["columns"]] == [
        ("age", "numeric"), ("colour", "categorical"), ("joined", "date"), ("member", "boolean")]
    assert table["columns"][1]["categories"] == ["blue", "green", "red"]
    assert table["columns"][2]["features"] == ["year", "month", "day of year", "weekday"]
    assert table["dropped"][0]["name"] == "id" and "row number" in table["dropped"][0]["reason"]
    assert {"missing": "impute", "scaling": "standard", "select": "none", "dates": "calendar"}.items() <= table.items()
    assert prep["columns"] == ["age", "colour", "joined", "member"]
    assert "colour=red" in prep["feature_names"] and "age (missing)" in prep["feature_names"]
    assert meta["input_shape"] == [len(prep["feature_names"])]


def test_an_unseen_category_warns_once_and_encodes_as_none(mixed_run):
    tmp, path, _, _ = mixed_run
    rows = pd.read_csv(tmp / "t.csv").head(6).drop(columns=["label"])
    rows.loc[[0, 2, 3], "colour"] = ["teal", "teal", "ochre"]
    rows.to_csv(tmp / "new.csv", index=False)
    predictor = Predictor.from_run(path)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        x, names = predictor.load_files([tmp / "new.csv"])
    assert [str(w.message) for w in said] == [
        f"{tmp / 'new.csv'}: column 'colour' holds 2 categories not seen in training: 'teal' at line 2 "
        "(data row 1) and line 4 (data row 3); 'ochre' at line 5 (data row 4); encoded as none of the known ones"]
    inputs = predictor.model_inputs(x).numpy()
    block = [i for i, n in enumerate(predictor.meta["preprocessing"]["feature_names"]) if n.startswith("colour=")]
    assert (inputs[[0, 2, 3]][:, block] == 0).all() and (inputs[[1, 4, 5]][:, block].sum(1) == 1).all()
    assert len(predictor.predict_files([tmp / "new.csv"])) == 6 and names[0] == "new.csv:1"


def test_a_run_folder_from_before_per_column_schemas_predicts_and_evaluates_as_before(tmp_path):
    rng = np.random.default_rng(1)
    source = tmp_path / "plain.csv"
    f1 = rng.normal(size=100)
    pd.DataFrame({"f1": f1, "f2": rng.normal(size=100), "label": np.where(f1 > 0, "a", "b")}).to_csv(source, index=False)
    path, _, _ = train_kept(tmp_path, source, "data.scaling=none")  # its preprocessing changes nothing
    rows = tmp_path / "rows.csv"
    pd.read_csv(source).drop(columns=["label"]).head(20).to_csv(rows, index=False)
    before, metrics = Predictor.from_run(path).predict_files([rows]), evaluate_run(path)[0]
    meta = json.loads((path / "model.json").read_text())
    meta["format_version"] = 2  # as the run would have been written then
    meta["preprocessing"] = {"columns": ["f1", "f2"], "categorical": {}, "feature_names": ["f1", "f2"]}
    (path / "model.json").write_text(json.dumps(meta))
    (path / "preprocess.skops").unlink()
    predictor = Predictor.from_run(path)
    assert predictor.table_preprocessing is None
    after = predictor.predict_files([rows])
    assert [p.probability for p in after] == pytest.approx([p.probability for p in before], abs=1e-6)
    assert evaluate_run(path)[0]["accuracy"] == pytest.approx(metrics["accuracy"])


def test_a_missing_preprocess_file_is_one_clear_error(mixed_run, tmp_path):
    tmp, path, _, _ = mixed_run
    copy = shutil.copytree(path, tmp_path / "copy")
    (copy / "preprocess.skops").unlink()
    with pytest.raises(NeuroclassError, match="preprocess.skops: missing; the run's table preprocessing is needed"):
        Predictor.from_run(copy).predict_files([tmp / "t.csv"])


# ----------------------------------------------------------------------------- bad tables, CLI

def refused(capsys, tmp_path, df, *extra) -> str:
    """``neuroclass train`` on ``df``: exit 2, one error line (returned), no run folder."""
    df.to_csv(tmp_path / "bad.csv", index=False)
    rc = main(["train", str(tmp_path / "bad.csv"), "--label-column", "label", "--model", "mlp", "--epochs", "1",
               "--quiet", "--out", str(tmp_path / "runs"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("neuroclass: error:"), err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    return err[0]


def base(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"f1": np.random.default_rng(0).normal(size=n), "label": ["cat", "dog"] * (n // 2)})


@pytest.mark.parametrize("change, extra, words", [
    (lambda df: df.assign(f2=np.nan), [], ["column 'f2' is empty", "all 40 rows missing"]),
    (lambda df: df.assign(f2=[str(i) for i in range(17)] + ["n.a."] + [str(i) for i in range(22)]), [],
     ["column 'f2' is not numeric", "line 19 (data row 18) holds 'n.a.'", "data.missing", "data.categorical=[f2]"]),
    (lambda df: df.assign(f1=df.f1.where(df.index % 7 != 3)), ["--set", "data.missing=error"],
     ["column 'f1' has a missing value in 6 rows", "line 5 (data row 4)", "data.missing=impute"]),
    (lambda df: df.assign(label=[f"c{i}" for i in range(40)]), [],
     ["label column 'label' holds a different value in each of its 40 rows", "--label-column"]),
    (lambda df: df.assign(label="cat"), [], ["label column 'label' holds only one class ('cat')",
                                             "add examples of another class"]),
    (lambda df: df.drop(columns=["label"]).assign(lbl=df.label), [], ["no label column 'label'", "lbl"]),
])
def test_bad_tables_are_one_line_naming_column_and_fix(tmp_path, capsys, change, extra, words):
    line = refused(capsys, tmp_path, change(base()), *extra)
    assert all(w in line for w in words), line


def test_a_table_of_one_row_per_class_is_refused(tmp_path, capsys):
    line = refused(capsys, tmp_path, pd.DataFrame({"f1": [0.1, 0.2], "label": ["cat", "dog"]}))
    assert "label column 'label'" in line and "--label-column" in line


# ----------------------------------------------------------------------------- Palmer penguins

def test_palmer_penguins_train_with_defaults_and_predict(tmp_path, capsys):
    csv = tmp_path / "penguins.csv"
    with importlib.resources.as_file(importlib.resources.files("palmerpenguins") / "data" / "penguins.csv") as src:
        shutil.copy(src, csv)
    assert pd.read_csv(csv).isna().any().any()  # missing values, text columns: nothing declared
    rc = main(["train", str(csv), "--label-column", "species", "--epochs", "3", "--out", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "categorical island (3 categories), sex (2 categories)" in out
    run = next(p for p in (tmp_path / "runs").iterdir() if not p.name.startswith("."))
    assert json.loads((run / "metrics.json").read_text())["accuracy"] > 0.8
    names = json.loads((run / "model.json").read_text())["preprocessing"]["feature_names"]
    assert {"island=Biscoe", "sex=female", "sex (missing)", "body_mass_g (missing)"} <= set(names)
    data = json.loads((run / "report.json").read_text())["data"]
    rows = data["features"]["rows"]  # of the model inputs
    assert [r["feature"] for r in rows] == names[:len(rows)] and all(np.isfinite(r["mean"]) for r in rows)
    columns = {r["column"]: r for r in data["columns"]["rows"]}  # of the file, in its units
    mass = columns["body_mass_g"]
    assert mass["kind"] == "numeric" and 3000 < mass["mean"] < 5500 and mass["min"] >= 2500
    assert columns["island"]["kind"] == "categorical" and columns["island"]["most_frequent"].startswith("Biscoe")
    assert sum(r["missing"] for r in columns.values()) > 0  # the table's gaps, counted before imputation
    assert "Columns as in the file" in (run / "report.html").read_text()
    assert main(["predict", str(run), str(csv), "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(pd.read_csv(csv))
