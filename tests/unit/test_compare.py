"""`neuroclass compare`: entries checked before anything trains, every entry on the same split (or
folds), the leaderboard ranked by the validation metric, the budget shared by the entries left, a
failing entry recorded while the others finish. Real fits on 160 coloured blocks: logreg, knn, an
MLP for one epoch."""
from __future__ import annotations

import csv
import re
import json

import numpy as np
import pandas as pd
import pytest

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.data.blocks import make_blocks
from neuroclass.errors import NeuroclassError, RunInterrupted
from neuroclass.training.callbacks import StopRequest
from neuroclass.tuning.compare import FINISH_SECONDS, CompareSettings, compare
from neuroclass.tuning.compare_entries import parse_entries


def blocks_npz(path, n=160, size=16):
    ds = make_blocks(n=n, size=size, task="colour", seed=0)
    np.savez(path, x=ds.x.numpy(), y=ds.y.numpy())
    return path


def settings(tmp_path, models, *extra, cv=None, report=False):
    data = blocks_npz(tmp_path / "blocks.npz")
    base = load_config(overrides=[f"data.source={data}", f"out={tmp_path / 'runs'}", "train.quiet=true",
                                  "train.epochs=1", "train.threads=1", *extra])
    return CompareSettings(base, parse_entries(models), cv=cv, report=report)


class StepClock:
    """Seconds that creep (a microsecond a reading) and jump when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    return compare(settings(tmp, "logreg,knn,mlp[hidden=[32]]", report=False), clock=StepClock())


def test_the_folder_holds_a_run_per_entry_the_leaderboard_best_and_a_report(compared):
    folder = compared.folder
    assert folder.name.startswith("compare-blocks")
    names = {p.name for p in folder.iterdir()}
    assert {"leaderboard.csv", "leaderboard.json", "report.html", "best", "logreg", "knn"} <= names
    assert all((folder / r["run"] / "model.json").is_file() for r in compared.rows)
    assert (folder / "best").resolve() == (folder / compared.rows[0]["run"]).resolve() == compared.best.resolve()
    with open(folder / "leaderboard.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [row["entry"] for row in table] == [r["entry"] for r in compared.rows]
    assert {"val_accuracy", "test_accuracy", "test_macro_f1", "test_log_loss", "train_seconds",
            "predict_seconds_per_1000", "model_bytes", "parameters", "run"} <= set(table[0])
    record = json.loads((folder / "leaderboard.json").read_text())
    assert record["metric"] == "accuracy" and record["direction"] == "maximize" and record["finished"]
    page = (folder / "report.html").read_text()
    assert all(r["entry"] in page for r in compared.rows) and 'class="chart"' in page
    assert all(r["report"] is None for r in compared.rows) and "(no report.html)" in page


def test_rows_are_ranked_by_the_validation_metric_with_costs(compared):
    rows = compared.rows
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert [r["val"] for r in rows] == sorted((r["val"] for r in rows), reverse=True)
    by_entry = {r["entry"]: r for r in rows}
    assert by_entry["mlp[hidden=[32]]"]["parameters"] > 0  # a network's; a classical family has none
    assert by_entry["logreg"]["parameters"] is None and by_entry["knn"]["model_bytes"] > 0
    assert all(0 <= r["test_accuracy"] <= 1 and r["error"] is None for r in rows)
    # the test pass reads the clock before and after: one microsecond for the whole test split
    tested = len(np.load(compared.folder / rows[0]["run"] / "split.npz")["test"])
    assert [r["predict_seconds_per_1000"] for r in rows] == pytest.approx([1000 * 1e-6 / tested] * 3)


def test_every_entry_trains_and_tests_on_the_same_split(compared):
    splits = [np.load(compared.folder / r["run"] / "split.npz") for r in compared.rows]
    for name in ("train", "val", "test"):
        assert all(np.array_equal(s[name], splits[0][name]) for s in splits[1:])


def test_cross_validation_gives_mean_and_std_on_the_same_folds(tmp_path):
    result = compare(settings(tmp_path, "logreg,knn", cv=2))
    for row in result.rows:
        assert row["val_std"] is not None and row["test_accuracy_std"] is not None
        assert (result.folder / row["run"] / "cv.json").is_file()
    folds = [np.load(result.folder / r["run"] / "oof.npz") for r in result.rows]
    assert np.array_equal(folds[0]["index"], folds[1]["index"]) and np.array_equal(folds[0]["fold"], folds[1]["fold"])
    assert "±" in (result.folder / "report.html").read_text()


def test_each_entry_gets_the_time_left_divided_by_the_entries_left(tmp_path):
    clock = StepClock()

    def entry_took_20_seconds(row):
        clock.now += 20.0

    result = compare(settings(tmp_path, "logreg,knn,knn[n_neighbors=3]", "train.time_budget=100"),
                     clock=clock, started=0.0, on_entry=entry_took_20_seconds)
    shares = {r["entry"]: r["time_budget"] for r in result.rows}
    left = 100.0 - FINISH_SECONDS
    assert shares["logreg"] == pytest.approx(left / 3, abs=0.01)
    assert shares["knn"] == pytest.approx((left - 20) / 2, abs=0.01)  # the first ended early: its rest shared
    assert shares["knn[n_neighbors=3]"] == pytest.approx(left - 40, abs=0.01)
    assert clock.now <= 100.0


def test_a_failing_entry_is_a_row_with_its_error_and_the_others_finish(tmp_path):
    result = compare(settings(tmp_path, "knn[n_neighbors=100000],logreg", report=True))
    assert [r["entry"] for r in result.rows] == ["logreg", "knn[n_neighbors=100000]"]
    failed = result.rows[-1]
    assert "n_neighbors" in failed["error"] and failed["run"] is None and failed["val"] is None
    best = result.rows[0]
    assert best["error"] is None and result.best is not None and best["report"] == "logreg/report.html"
    page = (result.folder / "report.html").read_text()
    assert "Failed entries" in page and 'href="logreg/report.html"' in page  # the run's own report


def test_when_every_entry_fails_the_first_error_is_raised(tmp_path):
    with pytest.raises(NeuroclassError, match="every entry failed.*n_neighbors"):
        compare(settings(tmp_path, "knn[n_neighbors=100000]"))


def test_when_every_entry_fails_its_config_check_nothing_is_written(tmp_path, capsys):
    # data.encoding=embedding is for a table's categories: each network refuses it on these images
    with pytest.raises(NeuroclassError, match="every entry failed, so nothing was written; the first, "
                                              "mlp: data.encoding=embedding applies to a table"):
        compare(settings(tmp_path, "mlp,cnn", "data.encoding=embedding"))
    assert list((tmp_path / "runs").iterdir()) == []
    code = main(["compare", "blocks:n=64,size=8", "--models", "mlp,cnn", "--set", "data.encoding=embedding",
                 "--out", str(tmp_path / "cli")])
    assert code == 2 and "nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists() or list((tmp_path / "cli").iterdir()) == []


def test_a_stop_request_ends_the_comparison_with_the_leaderboard_of_what_finished(tmp_path):
    stop = StopRequest()
    with pytest.raises(RunInterrupted):
        compare(settings(tmp_path, "logreg,knn"), stop=stop, on_entry=lambda row: stop.request("stopped by the test"))
    record = json.loads(next((tmp_path / "runs").glob("compare-*/leaderboard.json")).read_text())
    assert not record["finished"] and [r["entry"] for r in record["rows"]] == ["logreg"]


@pytest.fixture
def small_table(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    frame["label"] = np.where(frame["a"] > 0, "yes", "no")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    return tmp_path / "rows.csv"


@pytest.mark.parametrize("models, words", [
    ("mlp,xgbost", "unknown model family 'xgbost'; choose one of: .* Did you mean 'xgboost'?"),
    ("logreg,knn,logreg", "names 'logreg' twice"),
    ("logreg,svm+hog", "entry 'svm\\+hog': data.features=hog .* is a table of feature rows already"),
    ("knn[n_neighbours=3]", "entry 'knn\\[n_neighbours=3\\]': .*Did you mean 'model.options.n_neighbors'"),
])
def test_bad_entries_fail_with_one_line_before_anything_trains(tmp_path, small_table, capsys, models, words):
    out = tmp_path / "runs"
    code = main(["compare", str(small_table), "--label-column", "label", "--models", models, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("neuroclass: error: --models")
    assert re.search(words, err), err
    assert not out.exists()  # nothing was written


def test_the_cli_prints_a_line_per_entry_and_each_warning_once(tmp_path, small_table, capsys):
    frame = pd.read_csv(small_table)
    frame["same"] = 1.0  # a constant column: a warning each time the data loads (once per entry and fold)
    frame.to_csv(small_table, index=False)
    code = main(["compare", str(small_table), "--label-column", "label", "--models", "logreg,knn", "--cv", "2",
                 "--out", str(tmp_path / "runs"), "--no-report", "--set", "train.threads=1"])
    captured = capsys.readouterr()
    assert code == 0
    assert "logreg: validation accuracy" in captured.out and "knn: validation accuracy" in captured.out
    assert "best: " in captured.out and "leaderboard.csv" in captured.out
    assert captured.err.count("column 'same'") == 1, captured.err
