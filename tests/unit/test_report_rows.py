"""Where the report's listed examples are: a table file's data row (counted from 1, as messages
about the file count them) for table runs, the position in the evaluated data for images."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import quick_config
from neuroclass.config import load_config
from neuroclass.evaluation.report import write_report
from neuroclass.evaluation.report.sections import mistakes
from neuroclass.pipeline import train as train_run

N = 120


@pytest.fixture(scope="module")
def noisy_table(tmp_path_factory):
    """(a finished run on a CSV whose labels are half noise, so that it makes mistakes; the CSV)."""
    tmp = tmp_path_factory.mktemp("rows")
    rng = np.random.default_rng(3)
    x = rng.normal(size=N)
    label = np.where((x > 0) ^ (rng.random(N) < 0.3), "up", "down")
    df = pd.DataFrame({"x": x, "y": rng.normal(size=N), "label": label})
    df.to_csv(tmp / "t.csv", index=False)
    cfg = load_config(overrides=[f"data.source={tmp / 't.csv'}", "data.label_column=label", f"out={tmp / 'runs'}",
                                 "model.name=mlp", "model.options.hidden=[8]", "train.epochs=2", "train.quiet=true"])
    return train_run(cfg, report=False).path, tmp / "t.csv"


def read_report(html):
    return json.loads(html.with_suffix(".json").read_text())


def test_a_table_runs_mistakes_name_their_data_row_in_the_file(noisy_table, tmp_path):
    run, source = noisy_table
    report = read_report(write_report(run, out=tmp_path / "report.html"))
    found = report["mistakes"]
    assert found["rows"] == "data row" and found["examples"], "the fixture should make mistakes"
    table = pd.read_csv(source)
    with np.load(run / "split.npz") as split:
        test = split["test"]
    for e in found["examples"]:
        assert e["row"] == test[e["index"]] + 1  # the split position maps to the file's row, counted from 1
        assert table["label"].iloc[e["row"] - 1] == e["true"]
    page = mistakes(report, {})
    assert "<th>data row (from 1)</th>" in page.replace(' class="num"', "")
    assert f">{found['examples'][0]['row']}<" in page


def test_mistakes_on_other_rows_name_the_rows_of_that_file(noisy_table, tmp_path):
    run, source = noisy_table
    other = tmp_path / "other.csv"
    pd.read_csv(source).iloc[::-1].to_csv(other, index=False)  # the same rows, in another order
    report = read_report(write_report(run, str(other)))
    table = pd.read_csv(other)
    assert report["mistakes"]["rows"] == "data row"
    for e in report["mistakes"]["examples"]:
        assert e["row"] == e["index"] + 1 and table["label"].iloc[e["index"]] == e["true"]
    assert (run / "report-other.html").is_file()


def test_image_runs_keep_the_position_in_the_evaluated_data(tmp_path):
    run = train_run(quick_config(tmp_path, source="blocks:n=200,size=8,task=shape", **{"train.epochs": 1}),
                    report=False).path
    report = read_report(write_report(run, out=tmp_path / "r.html"))
    found = report["mistakes"]
    assert found["rows"] == "index" and all(e["row"] is None for e in found["examples"])
    assert "index (from 0)" in mistakes(report, {})
