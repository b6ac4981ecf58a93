"""The report's permutation importance: the column that carries the label ranks first, its cost is
priced from the test pass and a budget that cannot afford it skips it with a note; images get a note."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from neuroclass.config import load_config
from neuroclass.evaluation.report.costs import ReportSizes, report_parts, time_box
from neuroclass.evaluation.report.importance import (IMAGES, REPEATS, PredictorClassifier, importance_chart,
                                                     importance_html, importance_section, permutation_ranking)
from neuroclass.evaluation.report.inputs import load_inputs
from neuroclass.pipeline import train


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """logreg on 300 rows of five columns; only "signal" (the third) decides the label."""
    tmp = tmp_path_factory.mktemp("importance")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"noise{i}": rng.normal(size=300) for i in range(4)})
    frame.insert(2, "signal", rng.normal(size=300))
    frame["label"] = np.where(frame["signal"] > 0, "yes", "no")
    frame.to_csv(tmp / "rows.csv", index=False)
    cfg = load_config(overrides=[f"data.source={tmp / 'rows.csv'}", "data.label_column=label", "model.name=logreg",
                                 f"out={tmp / 'runs'}", "train.quiet=true", "train.threads=1"])
    return train(cfg, report=False)


def test_the_column_that_carries_the_label_ranks_first(table_run):
    inputs = load_inputs(table_run.path)
    found = permutation_ranking(inputs)
    assert found["features"] == found["shown"] == 5 and found["repeats"] == REPEATS
    first, *others = found["rows"]
    assert first["feature"] == "signal" and first["index"] == 2
    assert first["mean"] > 0.2 > max(r["mean"] for r in others)
    assert [r["mean"] for r in found["rows"]] == sorted((r["mean"] for r in found["rows"]), reverse=True)
    # what scikit-learn scores: the run's own test accuracy, through its Predictor
    scorer = PredictorClassifier(inputs.predictor)
    assert scorer.score(inputs.eval_x.numpy(), inputs.eval_y.numpy()) == pytest.approx(table_run.metrics["accuracy"])
    assert importance_chart(found).startswith("data:image/png;base64,")
    assert "signal" in importance_html({"importance": found}, {})


def test_the_cost_is_features_times_repeats_test_passes():
    sizes = ReportSizes("table", (40,), 3, train=800, val=100, evaluated=200)
    part = next(p for p in report_parts(sizes) if p.name == "importance")
    assert part.examples == part.least == 40  # all features or none
    forward = 1e-3  # seconds a row: the copies of the rows cost little beside the passes
    assert part.seconds(40, forward) == pytest.approx((REPEATS * 40 + 1) * 200 * forward, rel=0.01)


def test_a_budget_that_cannot_afford_it_skips_it_with_a_note(table_run):
    inputs = load_inputs(table_run.path)
    box = time_box(inputs, deadline=10.0, clock=lambda: 10.0)
    found = importance_section(inputs, box)
    needs = box.decisions["importance"].needs
    assert needs > 0 and found == {"skipped": f"skipped: permutation importance (needs about {needs:.1f} s; the time "
                                              "budget left 0.0 s)"}
    assert "skipped: permutation importance" in importance_html({"importance": found}, {})
    assert box.decisions["importance"].run == "skip"


def test_images_get_a_note_instead():
    found = importance_section(SimpleNamespace(kind="image"))
    assert found == {"skipped": IMAGES} and "feature rows" in importance_html({"importance": found}, {})
