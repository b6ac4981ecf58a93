"""Labels checked before the split: near-duplicate labels, columns that are not classes, classes too
small for every split, and table runs' defaults (model, speeds, data_issues.json in the run and report)."""
import contextlib
import io
import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from neuroclass.cli import main
from neuroclass.config import DataConfig, ModelConfig, load_config
from neuroclass.data import from_arrays, load, split
from neuroclass.data.issues import DataIssues, MergedLabel
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.evaluate import LabelledInputs, in_run_classes
from neuroclass.models.registry import resolve_default_model
from neuroclass.pipeline import train as train_run
from neuroclass.runs import RunFolder


def write_csv(path, labels, seed=0, column="answer"):
    """Rows of 3 numeric features whose first feature tells the label (as given, stray spaces kept)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(labels), 3))
    x[:, 0] += np.array([2.0 if str(v).strip().lower() in ("yes", "ｙｅｓ") else -2.0 for v in labels])
    df = pd.DataFrame(x, columns=["f1", "f2", "f3"])
    df[column] = labels
    df.to_csv(path, index=False)
    return path


def spelled(n, seed=0):
    """n labels yes/no, a fifth of them written with a stray space, other case or full-width letters."""
    rng = np.random.default_rng(seed)
    forms = {"yes": ["yes ", " yes", "Yes", "ｙｅｓ"], "no": [" no", "NO"]}
    base = rng.choice(["yes", "no"], size=n)
    return [rng.choice(forms[b]) if rng.random() < 0.2 else b for b in base]


def warned(record, text):
    return [str(w.message) for w in record if text in str(w.message)]


def test_near_duplicate_table_labels_merge_into_one_class_with_one_warning(tmp_path):
    path = write_csv(tmp_path / "t.csv", spelled(300))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load(DataConfig(source=str(path), label_column="answer"))
    assert ds.classes == ["no", "yes"]
    lines = warned(record, "read as one class")
    assert len(lines) == 1
    assert '"yes", ' in lines[0] and '" yes"' in lines[0] and '"yes "' in lines[0] and '"ｙｅｓ"' in lines[0]
    assert 'read as one class "yes"' in lines[0] and 'read as one class "no"' in lines[0]
    merged = {m.into: set(m.values) for m in ds.issues.merged_labels}
    assert merged == {"no": {"no", " no", "NO"}, "yes": {"yes", "yes ", " yes", "Yes", "ｙｅｓ"}}
    raw = pd.read_csv(path)["answer"].map(lambda v: "yes" if v.strip().lower() in ("yes", "ｙｅｓ") else "no")
    assert [ds.classes[i] for i in ds.y.tolist()] == raw.tolist()  # every row kept its meaning


def test_strict_labels_refuse_near_duplicates_naming_them(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["yes", "yes ", "no"] * 20)
    with pytest.raises(NeuroclassError, match=r'"yes" and "yes " would be class "yes".*data\.labels=merge'):
        load(DataConfig(source=str(path), label_column="answer", labels="strict"))
    with pytest.raises(NeuroclassError, match="data.labels"):
        load_config(overrides=["data.labels=loose"])


def test_distinct_labels_are_left_alone(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["yes", "no", "maybe"] * 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all
        ds = load(DataConfig(source=str(path), label_column="answer", labels="strict"))
    assert ds.classes == ["maybe", "no", "yes"] and not ds.issues


def test_class_folders_that_differ_only_by_case_or_spaces_are_one_class(tmp_path):
    rng = np.random.default_rng(0)
    for folder, n in (("cat", 12), ("Cat ", 4), ("dog", 16)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / folder / f"{i}.png")
    with pytest.warns(UserWarning, match='"cat" and "Cat " read as one class "cat"'):
        ds = load(DataConfig(source=str(tmp_path), cache=False))
    assert ds.classes == ["cat", "dog"] and np.bincount(ds.y.numpy()).tolist() == [16, 16]
    assert ds.issues.merged_labels == [MergedLabel("cat", ("cat", "Cat "))]


@pytest.mark.parametrize("values, words", [
    (np.round(np.linspace(0.1, 9.9, 200), 3), ["not whole", "continuous target", "--label-column"]),
    (np.arange(200), ["different value in each of its 200 rows", "ID column", "--label-column"]),
    (np.arange(200) // 1.5, ["distinct values in 200 rows", "--label-column"]),
])
def test_a_label_column_that_does_not_hold_classes_is_refused(tmp_path, values, words):
    df = pd.DataFrame({"f1": np.arange(200.0), "y": values})
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(NeuroclassError) as err:
        load(DataConfig(source=str(tmp_path / "t.csv"), label_column="y"))
    assert "label column 'y'" in str(err.value) and all(w in str(err.value) for w in words)
    assert "\n" not in str(err.value)


def test_whole_numbers_written_as_floats_are_classes(tmp_path):
    quality = np.arange(300) % 6 + 3
    for name, written in (("int.csv", quality), ("float.csv", [f"{q:.1f}" for q in quality])):
        pd.DataFrame({"f1": np.arange(300.0), "quality": written}).to_csv(tmp_path / name, index=False)
        ds = load(DataConfig(source=str(tmp_path / name), label_column="quality"))
        assert ds.classes == ["3", "4", "5", "6", "7", "8"]


def test_an_empty_label_cell_names_column_and_row(tmp_path):
    labels = ["a", "b"] * 50
    path = write_csv(tmp_path / "t.csv", labels, column="label")
    df = pd.read_csv(path)
    df.loc[42, "label"] = None
    df.to_csv(path, index=False)
    with pytest.raises(NeuroclassError, match=r"label column 'label' is empty at line 44 \(data row 43\);"):
        load(DataConfig(source=str(path), label_column="label"))


def test_a_test_folder_with_a_class_not_in_train_is_refused_naming_it(tmp_path):
    rng = np.random.default_rng(0)
    for part, classes in (("train", ("h", "v")), ("test", ("h", "v", "cross"))):
        for c in classes:
            (tmp_path / part / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / part / c / f"{i}.png")
    with pytest.raises(NeuroclassError, match="cross"):
        load(DataConfig(source=str(tmp_path), cache=False))


def test_evaluation_labels_spelled_differently_map_to_the_run_classes_and_unknown_ones_fail():
    x, y = torch.zeros(3, 2), torch.tensor([0, 1, 2])
    inputs = LabelledInputs(x, y, ["Yes ", "no", "yes"], "other")
    with pytest.warns(UserWarning, match='"Yes " read as the model\'s class "yes"'):
        mapped = in_run_classes(inputs, ["no", "yes"], "other.csv")
    assert mapped.y.tolist() == [1, 0, 1]
    with pytest.raises(NeuroclassError, match="cross"):
        in_run_classes(LabelledInputs(x, y, ["cross", "no", "yes"], "o"), ["no", "yes"], "o")


def dataset_with_counts(counts):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    x = np.random.default_rng(0).normal(size=(len(y), 4))
    return from_arrays(x, y, name="counts", classes=[f"c{i}" for i in range(len(counts))])


def test_a_one_example_class_is_kept_for_training_and_named_once():
    ds = dataset_with_counts([30, 30, 1])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        s = split(ds, 0.1, 0.2, seed=0)
    lines = warned(record, "example")
    assert lines == [lines[0]] and "class 'c2' has 1 example: kept for training only; it is not " \
                                   "validated or tested" in lines[0]
    assert 2 in s.train.y.tolist() and 2 not in s.val.y.tolist() + s.test.y.tolist()
    assert [(c.name, c.count, c.missing_from) for c in ds.issues.small_classes] == [("c2", 1, ("val", "test"))]
    assert s.method["test"] == s.method["val"] == "stratified"  # the other classes stay stratified
    assert np.bincount(s.test.y.numpy()).tolist() == [6, 6]


def test_every_class_missing_from_a_split_is_recorded_with_what_was_done():
    ds = dataset_with_counts([40, 40, 2, 1])
    with pytest.warns(UserWarning) as record:
        s = split(ds, 0.2, 0.2, seed=3)
    assert len(warned(record, "a split scores only the classes it has examples of")) == 1
    for small in ds.issues.small_classes:
        c = ds.classes.index(small.name)
        present = {name: c in getattr(s, name).y.tolist() for name in ("train", "val", "test")}
        assert set(small.missing_from) == {name for name, has in present.items() if not has}
        assert all(f"not {dict(val='validated', test='tested', train='trained on')[m]}" in small.action
                   or m in small.action for m in small.missing_from)
    assert {c.name for c in ds.issues.small_classes} >= {"c3"}
    assert "c0" not in {c.name for c in ds.issues.small_classes}


def test_a_clean_split_records_nothing():
    ds = dataset_with_counts([30, 30])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split(ds, 0.1, 0.2, seed=0)
    assert ds.issues.small_classes == []


def test_the_default_model_is_chosen_by_the_kind_of_data(caplog):
    assert ModelConfig().name == "auto"
    with caplog.at_level(logging.INFO, logger="neuroclass"):
        assert resolve_default_model(ModelConfig(), "table").name == "mlp"
    assert "table data: using model mlp" in caplog.text and "--model" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="neuroclass"):
        assert resolve_default_model(ModelConfig(), "image").name == "cnn"
        assert resolve_default_model(ModelConfig(name="resnet"), "table").name == "resnet"
    assert caplog.text == ""
    with pytest.raises(NeuroclassError, match="model.options"):  # checked once the family is known
        resolve_default_model(ModelConfig(options={"hiden": [8]}), "table")


def test_an_explicit_image_model_on_table_rows_keeps_its_error(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["yes", "no"] * 30)
    cfg = load_config(overrides=[f"data.source={path}", "data.label_column=answer", "model.name=cnn",
                                 f"out={tmp_path / 'runs'}", "train.epochs=1", "train.quiet=true"])
    with pytest.raises(NeuroclassError, match="model cnn needs images"):
        train_run(cfg, report=False)


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """`neuroclass train table.csv --label-column answer` with no --model, on labels with stray
    spaces and a class of one row; (run folder, stdout lines, stderr)."""
    tmp = tmp_path_factory.mktemp("table")
    labels = spelled(240, seed=1) + ["maybe"]
    path = write_csv(tmp / "table.csv", labels, seed=1)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", str(path), "--label-column", "answer", "--epochs", "3",
                     "--set", "train.batch_size=32", "--out", str(tmp / "runs")])
    assert code == 0, err.getvalue()
    run = next(p for p in (tmp / "runs").iterdir() if p.is_dir() and not p.name.startswith("."))
    return run, out.getvalue().splitlines(), err.getvalue()


def test_a_table_run_without_model_uses_mlp_and_says_so_first(table_run):
    run, stdout, stderr = table_run
    assert stdout[0] == "table data: using model mlp (the default for feature rows; choose another with --model)"
    assert json.loads((run / "model.json").read_text())["family"] == "mlp"
    assert RunFolder.open(run).config().model.name == "mlp"  # the replayable config names it
    speed = next(line for line in stdout if line.startswith("test accuracy"))
    assert "examples/s" in speed and "images/s" not in stdout and "images/s" not in stderr


def test_a_table_run_warns_once_about_merged_labels_and_the_rare_class(table_run):
    _, _, stderr = table_run
    lines = stderr.splitlines()
    assert len([line for line in lines if "read as one class" in line]) == 1
    assert len([line for line in lines if "class 'maybe' has 1 example" in line]) == 1
    assert all(line.startswith("neuroclass: warning: ") for line in lines if "class" in line)


def test_data_issues_json_is_written_read_and_reported(table_run):
    run, _, _ = table_run
    record = json.loads((run / "data_issues.json").read_text())
    assert {m["into"] for m in record["merged_labels"]} == {"yes", "no"}
    assert record["small_classes"][0]["name"] == "maybe"
    assert record["small_classes"][0]["missing_from"] == ["val", "test"]
    issues = RunFolder.open(run).read_data_issues()
    assert issues == DataIssues.from_json(record) and issues.small_classes[0].count == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["not_tested"] == ["maybe"] and metrics["per_class"]["maybe"]["tested"] is False
    report = json.loads((run / "report.json").read_text())
    assert report["data"]["issues"]["counts"]["merged_labels"] == 2
    html = (run / "report.html").read_text()
    section = html[html.index("Data issues (data_issues.json)"):]
    assert "kept for training only; it is not validated or tested" in section
    assert "&quot;yes &quot;" in section or '"yes "' in section
    assert "not tested: maybe" in html
    assert any(f["rule"] == "untested_classes" for f in report["doctor"]["findings"])


def test_a_run_folder_without_data_issues_reads_as_empty(table_run, tmp_path):
    run, _, _ = table_run
    old = tmp_path / "old-run"
    old.mkdir()
    for name in ("model.json", "config.yaml"):
        (old / name).write_bytes((run / name).read_bytes())
    assert RunFolder.open(old).read_data_issues() == DataIssues()


def test_the_data_section_folds_and_limits_thousands_of_file_issues():
    from neuroclass.data.issues import FileIssue, SmallClass
    from neuroclass.evaluation.report.collect import ISSUES_SHOWN, issues_summary
    from neuroclass.evaluation.report.data_quality import data_issues

    issues = DataIssues(ignored=[FileIssue(f"cats/._{i}.png", "macOS resource fork") for i in range(4000)]
                        + [FileIssue(f"dogs/{i}/.DS_Store", "operating-system metadata") for i in range(1000)],
                        small_classes=[SmallClass("rare", 1, ("val", "test"), "kept for training only")])
    summary = issues_summary(issues)
    assert summary["counts"]["ignored"] == 5000 and len(summary["shown"]["ignored"]) == ISSUES_SHOWN
    assert summary["reasons"]["ignored"] == {"macOS resource fork": 4000, "operating-system metadata": 1000}
    html = data_issues(json.loads(json.dumps(summary)))
    assert "<details><summary>5,000 files ignored (not data) (macOS resource fork: 4,000; " in html
    assert f"and {5000 - ISSUES_SHOWN:,} more in data_issues.json" in html
    assert html.count("cats/._") == ISSUES_SHOWN and "rare" in html
    assert "none recorded" in data_issues(issues_summary(DataIssues()))


# ----------------------------------------------------------------------------- table messages

def test_bad_rows_are_placed_by_file_line_and_the_next_few_named(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "b"] * 20, column="label")
    df = pd.read_csv(path)
    df.loc[[17, 20, 21, 30, 33, 39], "f2"] = np.inf
    df.to_csv(path, index=False)
    with pytest.raises(NeuroclassError) as err:
        load(DataConfig(source=str(path), label_column="label"))
    text = str(err.value)
    assert "column 'f2' is infinite (inf) at line 19 (data row 18); also at line 22 (data " \
           "row 21), line 23 (data row 22), line 32 (data row 31) and 2 more rows;" in text
    assert "row(s)" not in text


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(tmp_path):
    rows = [f"{i}.0,{i % 2},x" for i in range(8)]
    rows[2] = '2.0,0,"two\nlines"'
    text = "f1,label,note\n" + "\n".join(rows[:5]) + "\n\n" + "\n".join(rows[5:]) + "\n"
    path = tmp_path / "t.csv"
    path.write_text(text.replace("6.0,0,x", "six,0,x"))
    assert pd.read_csv(path)["f1"].tolist()[6] == "six"  # pandas: data row 7, after a blank line
    with pytest.raises(NeuroclassError, match=r"line 10 \(data row 7\) holds 'six'"):
        load(DataConfig(source=str(path), label_column="label", categorical=["note"]))


def with_header(path, header: str):
    """The CSV at ``path`` with its first line replaced (quotes keep a carriage return in a name)."""
    lines = path.read_text().split("\n")
    path.write_text("\n".join([header, *lines[1:]]))
    return path


@pytest.mark.parametrize("hidden", ["answer\r", "answer\u00a0", " answer", "\u200banswer"])
def test_a_column_name_with_invisible_characters_is_matched_with_a_warning(tmp_path, hidden):
    path = with_header(write_csv(tmp_path / "t.csv", ["yes", "no"] * 20), f'f1,f2,f3,"{hidden}"')
    with pytest.warns(UserWarning, match="invisible characters removed") as caught:
        ds = load(DataConfig(source=str(path), label_column="answer"))
    assert repr(hidden) in str(caught[0].message)
    assert ds.classes == ["no", "yes"] and ds.preprocessing["columns"] == ["f1", "f2", "f3"]


def test_a_missing_column_is_shown_with_its_invisible_characters(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["yes", "no"] * 20, column="answer")
    path.write_text("\n".join(line + "," + line.split(",")[-1] if line else line
                              for line in path.read_text().split("\n")))
    with_header(path, 'f1,f2,f3,"answer\r",answer')  # would both read as "answer": kept as written
    with pytest.raises(NeuroclassError) as err:
        load(DataConfig(source=str(path), label_column="answr"))
    assert "Columns: 'f1', 'f2', 'f3', 'answer\\r', 'answer'" in str(err.value)


def test_predict_json_writes_class_names_as_their_characters(tmp_path, capsys):
    labels = ["café" if i % 2 else "thé" for i in range(60)]
    path = write_csv(tmp_path / "drinks.csv", labels, column="drink")
    assert main(["train", str(path), "--label-column", "drink", "--epochs", "1", "--model", "mlp",
                 "--set", "train.batch_size=32", "--out", str(tmp_path / "runs")]) == 0
    run = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.name.startswith("."))
    rows = tmp_path / "rows.csv"
    pd.read_csv(path).drop(columns=["drink"]).head(4).to_csv(rows, index=False)
    capsys.readouterr()
    assert main(["predict", str(run), str(rows), "--json"]) == 0
    out = capsys.readouterr().out
    assert "\\u00e9" not in out and {json.loads(line)["label"] for line in out.splitlines()} <= {"café", "thé"}
    assert "é" in out
