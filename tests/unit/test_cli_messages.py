"""The command line's words for mistakes a new user makes: an option spelt wrong, a data path that is
not there, an option that does nothing with the config it is given, evaluating on a new table; and
the grammar of the messages (articles, plurals)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError, with_article
from neuroclass.evaluation.report.sections import doctor
from neuroclass.training.embeddings import check_encoding

FAST = ["--model", "mlp", "--set", "model.options.hidden=[16]", "--epochs", "1", "--quiet"]


def one_error_line(capsys) -> str:
    """The single stderr line of a refused command (no usage block, no traceback)."""
    err = capsys.readouterr().err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuroclass: error: "), err
    return lines[0]


def exit_code(argv: list[str]) -> int:
    """main(argv)'s exit code, whether it returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.fixture(scope="module")
def table_run(tmp_path_factory) -> tuple[Path, Path]:
    """(a finished tiny-mlp run on a 60-row CSV with a categorical column, the CSV)."""
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({"size": rng.normal(size=n), "island": rng.choice(["Biscoe", "Dream", "Torgersen"], size=n),
                       "label": np.where(np.arange(n) % 2 == 0, "cat", "dog")})
    df.to_csv(folder / "t.csv", index=False)
    assert main(["train", str(folder / "t.csv"), "--label-column", "label", "--out", str(folder / "runs"),
                 "--no-report", *FAST]) == 0
    (run,) = [p for p in (folder / "runs").iterdir() if p.is_dir()]
    return run, folder / "t.csv"


# ----------------------------------------------------------------------------- unknown options

@pytest.mark.parametrize("argv, said", [
    (["train", "digits", "--modle", "mlp"], "unknown option --modle; did you mean --model?"),
    (["evaluate", "runs/x", "--jsn"], "unknown option --jsn; did you mean --json?"),
    (["compare", "digits", "--models", "mlp", "--time-budgte=20s"], "unknown option --time-budgte; did you mean "
                                                                     "--time-budget?"),
    (["explain", "runs/x", "--indx", "3"], "unknown option --indx; did you mean --index?"),
    (["data", "get", "mnist", "--dri", "x"], "unknown option --dri; did you mean --dir?"),
])
def test_an_unknown_option_is_one_line_with_the_closest_option_of_its_command(argv, said, capsys):
    assert exit_code(argv) == 2
    assert one_error_line(capsys) == f"neuroclass: error: {said}"


def test_other_parse_errors_are_one_line_pointing_to_the_commands_help(capsys):
    assert exit_code(["predict", "runs/x", "a.png", "--zzz"]) == 2
    assert one_error_line(capsys) == ("neuroclass: error: unknown option --zzz; see 'neuroclass predict --help' "
                                      "for its options")
    assert exit_code(["models", "extra"]) == 2
    assert one_error_line(capsys) == "neuroclass: error: unexpected argument 'extra'; see 'neuroclass models --help'"
    assert exit_code(["train", "digits", "--epochs"]) == 2
    assert "--epochs: expected one argument; see 'neuroclass train --help'" in one_error_line(capsys)


# ----------------------------------------------------------------------------- missing paths

def test_a_missing_data_path_names_it_and_the_fix_in_train_and_evaluate(tmp_path, table_run, capsys):
    missing = tmp_path / "no-such.csv"
    fix = "no such file or folder; check the path, or give a built-in dataset name (fashion-mnist, mnist, digits"
    assert main(["train", str(missing), "--out", str(tmp_path / "runs"), *FAST]) == 2
    assert one_error_line(capsys) == f"neuroclass: error: DATA '{missing}': {fix}, blocks)."
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    run, _ = table_run
    assert main(["evaluate", str(run), "--data", str(missing)]) == 2  # a table run reads --data itself
    assert f"DATA '{missing}': {fix}" in one_error_line(capsys)


def test_a_missing_input_file_names_it_and_the_fix_in_predict_and_explain(tmp_path, trained_run, table_run, capsys):
    gone = tmp_path / "gone.png"
    fix = "file not found; check the path (an image: PNG, JPEG"
    assert main(["predict", str(trained_run.path), str(gone)]) == 2
    assert f"FILE '{gone}': {fix}" in one_error_line(capsys)
    assert main(["explain", str(trained_run.path), str(gone)]) == 2
    assert f"FILE '{gone}': {fix}" in one_error_line(capsys)
    rows = tmp_path / "rows.csv"
    assert main(["predict", str(table_run[0]), str(rows)]) == 2
    assert f"FILE '{rows}': {fix}" in one_error_line(capsys)


# ----------------------------------------------------------------------------- options that do nothing

def test_embedding_dim_without_embedding_encoding_is_refused(tmp_path, capsys):
    cfg = load_config(overrides=["model.name=mlp", "model.options.embedding_dim=8"])
    with pytest.raises(NeuroclassError, match="embedding_dim=8 .* add --set data.encoding=embedding"):
        check_encoding(cfg, "table")
    check_encoding(load_config(overrides=["model.name=mlp", "model.options.embedding_dim=8",
                                          "data.encoding=embedding"]), "table")  # the setting it sizes
    assert main(["train", "digits", "--out", str(tmp_path / "runs"), *FAST,
                 "--set", "model.options.embedding_dim=8"]) == 2
    line = one_error_line(capsys)
    assert "model.options.embedding_dim=8" in line and "add --set data.encoding=embedding" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ----------------------------------------------------------------------------- evaluate on a new table

def test_evaluate_on_new_rows_names_the_report_after_the_file_and_warns_once(tmp_path, table_run, capsys):
    run, source = table_run
    new = pd.read_csv(source).head(12)
    new.loc[[2, 5, 9], "island"] = ["Atlantis", "Atlantis", "Mu"]
    new.to_csv(tmp_path / "new_rows.csv", index=False)
    assert main(["evaluate", str(run), "--data", str(tmp_path / "new_rows.csv")]) == 0
    err = capsys.readouterr().err
    assert (run / "report-new_rows.html").is_file() and not (run / "report-new_rows.csv.html").exists()
    warned = [line for line in err.splitlines() if "not seen in training" in line]
    assert warned == [f"neuroclass: warning: {tmp_path / 'new_rows.csv'}: column 'island' holds 2 categories not "
                      "seen in training: 'Atlantis' at line 4 (data row 3) and line 7 (data row 6); 'Mu' at line 11 "
                      "(data row 10); encoded as none of the known ones"]


# ----------------------------------------------------------------------------- grammar

def test_articles_follow_the_sound_of_the_word():
    assert [with_article(w) for w in ("xgboost", "mlp", "svm", "EarlyStopping", "cnn", "logreg", "hist_gb")] == [
        "an xgboost", "an mlp", "an svm", "an EarlyStopping", "a cnn", "a logreg", "a hist_gb"]


def test_the_doctor_counts_one_suspect_in_the_singular():
    found = {"count": 1, "method": "confident learning", "rows": "index",
             "examples": [{"index": 4, "row": None, "label": "cat", "label_probability": 0.1, "predicted": "dog",
                           "predicted_probability": 0.9}]}
    page = doctor({"doctor": {"findings": [], "mislabelled": found}}, {})
    assert "(1 suspect)" in page and "1 suspects" not in page
    assert "index (from 0)" in page
