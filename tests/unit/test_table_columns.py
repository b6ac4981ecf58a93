"""Table columns and labels a new user trips on: row identifiers among the features, a measurement
chosen as the label, Unicode look-alike labels, ignored-file counts in the report, wide characters
in terminal tables and row numbering in predictions. Every table is generated here."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from neuroclass.cli import main
from neuroclass.config import DataConfig
from neuroclass.data import load
from neuroclass.data.issues import DataIssues, DroppedColumn, FileIssue, SmallClass
from neuroclass.data.labels import check_label_column
from neuroclass.data.split import NAMED_CLASSES, describe_missing
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.metrics import format_metrics
from neuroclass.evaluation.report.collect import issues_summary
from neuroclass.evaluation.report.data_quality import data_issues
from neuroclass.inference import Prediction, format_predictions
from neuroclass.text_width import display_width

N = 120


def sorted_by_class(path, **extra):
    """A CSV of N rows sorted by class (a, then b) with a weak float feature, plus ``extra`` columns."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": np.arange(1, N + 1), "x": rng.normal(size=N), **extra})
    df["label"] = ["a"] * (N // 2) + ["b"] * (N // 2)
    df.to_csv(path, index=False)
    return path


def load_warned(path, **cfg):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load(DataConfig(source=str(path), label_column="label", **cfg))
    return ds, [str(w.message) for w in record]


def test_a_row_id_column_is_dropped_with_one_warning_and_recorded(tmp_path):
    ds, said = load_warned(sorted_by_class(tmp_path / "t.csv"))
    assert ds.preprocessing["columns"] == ["x"] and ds.preprocessing["feature_names"] == ["x"]
    assert tuple(ds.x.shape) == (N, 1)
    assert len(said) == 1 and "column 'id'" in said[0] and "not used as a feature" in said[0]
    assert "--set data.keep_columns=id" in said[0]
    assert [c.name for c in ds.issues.dropped_columns] == ["id"]


@pytest.mark.parametrize("name, values, dropped", [
    ("ID", np.random.default_rng(1).permutation(N) * 7 + 1000, True),   # shuffled, index-like name
    ("customer_id", np.arange(N) * 3, True),
    ("Unnamed: 0", np.arange(N), True),
    ("code", [f"K{i:04d}" for i in np.random.default_rng(2).permutation(N)], True),  # text, all different
    ("count", np.random.default_rng(3).permutation(N) * 3, False),  # distinct whole numbers, plain name
    ("weight", np.random.default_rng(4).normal(70, 9, size=N), False),  # continuous, all different
    ("level", np.arange(N) % 5, False),  # repeats
])
def test_which_columns_count_as_row_identifiers(tmp_path, name, values, dropped):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=N), name: values, "label": ["a", "b"] * (N // 2)})
    df.to_csv(tmp_path / "t.csv", index=False)
    ds, _ = load_warned(tmp_path / "t.csv")
    assert (name not in ds.preprocessing["columns"]) is dropped
    assert ([c.name for c in ds.issues.dropped_columns] == [name]) is dropped


@pytest.mark.parametrize("name, values", [
    ("year", np.arange(2001, 2001 + N)),  # consecutive, but not from 0 or 1: a feature
    ("dose", np.arange(1, 11)),  # consecutive from 1, in a table too small to tell a row number
])
def test_consecutive_whole_number_features_are_kept(tmp_path, name, values):
    n = len(values)
    df = pd.DataFrame({name: values, "x": np.random.default_rng(0).normal(size=n), "label": ["a", "b"] * (n // 2)})
    df.to_csv(tmp_path / "t.csv", index=False)
    ds, said = load_warned(tmp_path / "t.csv")
    assert name in ds.preprocessing["columns"] and not said and not ds.issues.dropped_columns


def test_a_column_declared_categorical_is_never_dropped_as_an_identifier(tmp_path):
    codes = [f"K{i:04d}" for i in range(N)]
    df = pd.DataFrame({"x": np.random.default_rng(0).normal(size=N), "code": codes, "label": ["a", "b"] * (N // 2)})
    df.to_csv(tmp_path / "t.csv", index=False)
    ds, said = load_warned(tmp_path / "t.csv", categorical=["code"])
    assert "code" in ds.preprocessing["columns"] and not ds.issues.dropped_columns and not said


def test_keep_columns_keeps_an_identifier_and_checks_its_names(tmp_path):
    path = sorted_by_class(tmp_path / "t.csv")
    ds, said = load_warned(path, keep_columns=["id"])
    assert ds.preprocessing["columns"] == ["id", "x"] and not said and not ds.issues.dropped_columns
    with pytest.raises(NeuroclassError, match="data.keep_columns column 'idd' is not a feature column"):
        load(DataConfig(source=str(path), label_column="label", keep_columns=["idd"]))


def test_a_table_of_identifiers_only_is_refused_saying_how_to_keep_them(tmp_path):
    pd.DataFrame({"id": range(N), "label": ["a", "b"] * (N // 2)}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(NeuroclassError, match=r"row identifier.*data.keep_columns=\[id\]"):
        load(DataConfig(source=str(tmp_path / "t.csv"), label_column="label"))


def test_dropped_columns_survive_json_and_older_records_read_empty():
    issues = DataIssues(dropped_columns=[DroppedColumn("id", "holds a different value in every row")])
    assert DataIssues.from_json(json.loads(json.dumps(issues.to_json()))) == issues
    assert bool(issues) and DataIssues.from_json({"ignored": []}).dropped_columns == []
    html = data_issues(issues_summary(issues))
    assert "columns not used as features" in html and "holds a different value in every row" in html


def test_a_model_trained_beside_an_id_column_predicts_rows_without_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = sorted_by_class(tmp_path / "t.csv", z=rng.normal(size=N))
    assert main(["train", str(path), "--label-column", "label", "--model", "mlp", "--epochs", "1",
                 "--set", "model.options.hidden=[8]", "--quiet", "--out", str(tmp_path / "runs")]) == 0
    assert "column 'id'" in capsys.readouterr().err
    run = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert json.loads((run / "model.json").read_text())["preprocessing"]["columns"] == ["x", "z"]
    record = json.loads((run / "data_issues.json").read_text())
    assert [c["name"] for c in record["dropped_columns"]] == ["id"]
    rows = tmp_path / "rows.csv"
    pd.read_csv(path).drop(columns=["id", "label"]).head(3).to_csv(rows, index=False)
    assert main(["predict", str(run), str(rows), "--json"]) == 0
    sources = [json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()]
    assert sources == ["rows.csv:1", "rows.csv:2", "rows.csv:3"]  # data rows counted from 1, as in errors


# ----------------------------------------------------------------------------- label columns

def test_an_integer_measurement_as_label_is_refused_in_one_line():
    rng = np.random.default_rng(0)  # like wine magnesium: whole numbers, many seen once
    values = np.concatenate([np.repeat(np.arange(70, 105), [5] * 21 + [4] * 14), np.arange(110, 128)])
    rng.shuffle(values)
    counts = np.unique(values, return_counts=True)[1]
    assert len(values) == 179 and (counts == 1).sum() == 18
    with pytest.raises(NeuroclassError) as err:
        check_label_column(values, "wine.csv: label column 'magnesium'")
    text = str(err.value)
    assert "measurement or count" in text and "in one row only" in text and "\n" not in text
    assert f"{len(counts)} distinct values in 179 rows and 18 of them" in text
    assert "--label-column" in text and "bin the values" in text


@pytest.mark.parametrize("values", [np.repeat(np.arange(100), 10),
                                    np.repeat([f"class {i}" for i in range(100)], 10),
                                    np.concatenate([np.repeat(np.arange(12), 9), [12, 13]]),
                                    # named classes with a long tail (species): 135 of 200 seen once
                                    np.concatenate([np.repeat([f"species {i}" for i in range(65)], 12),
                                                    [f"species {i}" for i in range(65, 200)]])])
def test_many_real_classes_and_a_few_rare_ones_pass(values):
    check_label_column(np.random.default_rng(0).permutation(values), "t.csv: label column 'y'")


def test_the_small_class_warning_names_ten_classes_and_counts_the_rest():
    found = [SmallClass(f"c{i}", 1, ("test",), "kept for training only; it is not tested") for i in range(53)]
    line = describe_missing(found)
    assert line.count("class '") == NAMED_CLASSES and f"and {53 - NAMED_CLASSES} more classes" in line
    assert len(line) < 1000


def test_unicode_look_alike_labels_show_their_code_points(tmp_path):
    labels = ["caf\u00e9", "caf\u00e9", "cafe\u0301", "tea", "Tea"] * 24  # the composed form most often
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=len(labels)), "label": labels}).to_csv(tmp_path / "t.csv", index=False)
    ds, said = load_warned(tmp_path / "t.csv")
    line = next(s for s in said if "read as one class" in s)
    assert '"café" and "cafe\\u0301" (Unicode forms) read as one class "café"' in line
    assert '"Tea" and "tea" read as one class' in line or '"tea" and "Tea" read as one class' in line
    assert len(ds.classes) == 2 and "café" in ds.classes


# ----------------------------------------------------------------------------- report and terminal

def test_the_report_counts_ignored_folders_and_files_as_the_loader_says_them():
    ignored = ([FileIssue(f"pics/cats/.git{i}/", "version-control folder") for i in range(3)]
               + [FileIssue(f"pics/cats/.DS_Store{i}", "operating-system metadata") for i in range(5)])
    html = data_issues(json.loads(json.dumps(issues_summary(DataIssues(ignored=ignored)))))
    assert "3 folders and 5 files ignored (not data)" in html and "8 files" not in html


def columns_of(line: str, text: str) -> int:
    """The terminal column where ``text`` starts in ``line``."""
    return display_width(line[:line.index(text)])


def test_wide_class_names_keep_terminal_columns_aligned():
    preds = [Prediction("猫猫.png", "猫", 0.9, [("猫", 0.9)], False),
             Prediction("dog.png", "dog", 0.8, [("dog", 0.8)], False)]
    lines = format_predictions(preds).splitlines()
    assert len({columns_of(line, "0.") for line in lines[1:]}) == 1
    assert columns_of(lines[1], "猫 ") == columns_of(lines[2], "dog ")
    row = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3, "tested": True}
    m = {"classes": ["東京", "paris"], "accuracy": 1.0, "macro_f1": 1.0, "weighted_f1": 1.0,
         "log_loss": 0.0, "n": 6, "top_k_accuracy": {}, "roc_auc_ovr_macro": 1.0, "roc_auc_reason": None,
         "balanced_accuracy": 1.0, "per_class": {"東京": row, "paris": row}}
    table = format_metrics(m).splitlines()
    assert table[2].startswith("class") and table[3].startswith("東京") and table[4].startswith("paris")
    assert display_width(table[2]) == display_width(table[3]) == display_width(table[4])
    assert columns_of(table[3], "1.0000") == columns_of(table[4], "1.0000")
