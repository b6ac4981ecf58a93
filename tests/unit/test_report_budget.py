"""The report under a time budget: what a budget holds back for it before training, and, with a fake
clock, which analyses a report runs in full, on a sample or not at all, and how it says so."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import quick_config
from neuroclass.evaluation.report import budget_lines, write_report
from neuroclass.evaluation.report.costs import (FULL_BUDGET, RUN_FILES, ReportSizes, Reserve, finish_seconds,
                                                forward_seconds, report_parts, report_reserve, time_box)
from neuroclass.evaluation.report.diagnostics import ROBUSTNESS_EXAMPLES, leakage
from neuroclass.evaluation.report.inputs import load_inputs
from neuroclass.evaluation.report.timebox import SAMPLE_SHARE, TRIVIAL, Part, TimeBox
from neuroclass.pipeline import prepare, train
from neuroclass.training.state import TrainState

OPTIONAL = {"charts", "mislabelled", "example_pictures", "leakage", "dead_relu", "robustness"}


class FakeClock:
    """Seconds that move only when a test moves them."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_part_runs_in_full_on_a_sample_or_not_at_all_by_the_time_left():
    parts = [Part("a", "first analysis", 100, 10, fixed=1.0, per_example=0.125),
             Part("b", "second analysis", 50, 50, per_example=0.125)]
    clock = FakeClock()
    plenty = TimeBox(parts, deadline=100.0, clock=clock)
    assert [plenty.decide(name).run for name in "ab"] == ["full", "full"]
    assert plenty.lines() == []

    short = TimeBox(parts, deadline=11.0, clock=clock)
    first = short.decide("a")  # 13.5 s in full; a sample sized to SAMPLE_SHARE of the 11 s left
    assert SAMPLE_SHARE == 0.8
    assert (first.run, first.examples, first.of, first.estimate) == ("sample", 62, 100, 8.75)
    clock.now += 9.0  # it ran a little longer than estimated
    short.done("a")
    second = short.decide("b")  # 6.25 s in full, all or nothing
    assert (second.run, second.examples) == ("skip", 0)
    assert short.lines() == ["sampled: first analysis on 62 of 100 examples (the time budget left 11.0 s)",
                             "skipped: second analysis (needs about 6.2 s; the time budget left 2.0 s)"]


def test_each_decision_plans_again_with_the_time_left_and_serves_parts_by_priority():
    charts = Part("charts", "charts", 1, 1, fixed=2.0)
    leak = Part("leakage", "leakage check", 100, 10, per_example=0.125)
    clock = FakeClock()
    box = TimeBox([charts, leak], deadline=14.5, clock=clock)
    # asked first, the lower-priority part leaves the charts their 2 s: 12.5 s, all 100 examples
    assert box.decide("leakage").examples == 100
    clock.now += 11.0  # quicker than estimated: the charts fit
    box.done("leakage")
    assert box.decide("charts").run == "full"

    clock = FakeClock()
    box = TimeBox([charts, leak], deadline=14.5, clock=clock, finish=1.0)
    assert box.decide("charts").run == "full"
    clock.now += 5.0  # slower than its 2 s: 9.5 s left, less 1 s kept for the finish; 80% of 8.5 s
    box.done("charts")
    assert box.decide("leakage").examples == 54
    assert box.decide("leakage").examples == 54  # decided once

    # decided early (drawn last), the charts hold their 2 s until done: the leakage check gets 80% of 8 s
    clock = FakeClock()
    box = TimeBox([charts, leak], deadline=10.0, clock=clock)
    assert box.decide("charts").run == "full"
    assert box.decide("leakage").examples == 51
    clock.now += 6.4
    assert box.left() == pytest.approx(3.6)  # what the charts still have


def test_a_part_that_costs_next_to_nothing_runs_whatever_the_time_left():
    box = TimeBox([Part("cheap", "mislabel search", 1000, 1000, per_example=1e-6)], deadline=0.0,
                  clock=FakeClock(5.0))
    assert TRIVIAL == 0.05 and box.decide("cheap").run == "full"


def test_an_estimate_of_about_nothing_never_skips_and_a_skip_records_what_it_needed():
    # 0.2 s left, less the report's finish (1 s): nothing to spare, yet a part estimated at what the
    # page shows as 0.0 s runs in full; one that needs more is skipped with its estimate recorded
    parts = [Part("tiny", "mislabel search", 100, 100, per_example=0.0004),
             Part("big", "leakage check", 100, 100, fixed=0.3, per_example=0.001)]
    box = TimeBox(parts, deadline=0.2, clock=FakeClock(), finish=1.0)
    tiny, big = box.decide("tiny"), box.decide("big")
    assert (tiny.run, tiny.examples, tiny.needs) == ("full", 100, pytest.approx(0.04))
    assert (big.run, big.estimate, big.needs) == ("skip", 0.0, pytest.approx(0.4))
    record = {p["name"]: p for p in box.record()["parts"]}
    assert record["big"]["needs"] == 0.4 and record["tiny"]["needs"] == 0.04
    assert box.lines() == ["skipped: leakage check (needs about 0.4 s; the time budget left 0.0 s)"]


def test_without_a_deadline_every_part_runs_in_full():
    box = TimeBox([Part("a", "a", 10, 1, fixed=1e9)], clock=FakeClock())
    assert box.decide("a").run == "full" and box.lines() == []
    assert box.record() == {"seconds_left": None, "parts": [
        {"name": "a", "label": "a", "run": "full", "examples": 10, "of": 10, "estimate": 1e9,
         "left": None, "noun": "examples", "needs": 1e9, "line": ""}]}


def test_the_reservation_grows_with_the_test_size_and_the_budget():
    small = ReportSizes("image", (1, 28, 28), 10, train=5000, val=500, evaluated=300)
    large = replace(small, evaluated=10000)
    for budget in (20.0, 60.0, FULL_BUDGET):
        assert report_reserve(large, budget).seconds > report_reserve(small, budget).seconds
    assert report_reserve(large, FULL_BUDGET).examples > report_reserve(small, FULL_BUDGET).examples
    held = [report_reserve(large, budget) for budget in (20.0, 60.0, 300.0, FULL_BUDGET, 10 * FULL_BUDGET)]
    assert [h.seconds for h in held] == sorted(h.seconds for h in held)
    assert held[2].seconds < held[3].seconds == held[4].seconds
    # from FULL_BUDGET on: every part in full, the robustness curves' forward passes included
    parts = report_parts(large)
    assert held[3].seconds == pytest.approx(RUN_FILES + finish_seconds(large) + sum(p.seconds(p.examples, 0.0)
                                                                                    for p in parts))
    assert held[3].examples == sum(p.examples * p.passes for p in parts)
    assert held[0].examples < held[3].examples


def test_tables_have_no_pictures_or_robustness_and_the_forward_time_comes_from_the_test_pass():
    table = ReportSizes("table", (13,), 3, train=128, val=14, evaluated=36)
    assert [p.name for p in report_parts(table)] == ["charts", "mislabelled", "leakage", "importance", "dead_relu"]
    assert forward_seconds({"test_seconds": 3.0}, "flip", 1000) == pytest.approx(1.5e-3)
    assert forward_seconds({"test_seconds": 3.0}, "none", 1000) == pytest.approx(3e-3)
    assert forward_seconds({}, "none", 1000) == forward_seconds({"test_seconds": 3.0}, "none", 0) > 0


@pytest.fixture
def run_copy(trained_run, tmp_path):
    return shutil.copytree(trained_run.path, tmp_path / "run")


def test_a_report_with_no_time_left_skips_its_optional_analyses_and_says_so(run_copy, tmp_path):
    html = write_report(run_copy, out=tmp_path / "r" / "report.html", deadline=100.0, clock=FakeClock(100.0))
    report = json.loads(html.with_suffix(".json").read_text())
    budget = report["report"]["budget"]
    assert budget["seconds_left"] == 0.0
    assert {p["name"] for p in budget["parts"]} == OPTIONAL
    # all but the mislabel search and the pictures of these 16x16 images, which cost next to nothing
    needs = {p["name"]: p["needs"] for p in budget["parts"]}
    cheap = {"mislabelled", "example_pictures"}
    assert all(needs[name] <= TRIVIAL for name in cheap) and all(needs[name] > TRIVIAL for name in OPTIONAL - cheap)
    assert {p["name"]: p["run"] for p in budget["parts"]} == {**dict.fromkeys(OPTIONAL, "skip"),
                                                              **dict.fromkeys(cheap, "full")}
    assert all(p["examples"] == 0 for p in budget["parts"] if p["run"] == "skip")
    assert report["robustness"] == {"skipped": f"skipped: robustness checks (needs about {needs['robustness']:.1f} "
                                               "s; the time budget left 0.0 s)"}
    assert report["data"]["leakage"] == {"skipped": f"skipped: leakage check (needs about {needs['leakage']:.1f} s; "
                                                    "the time budget left 0.0 s)"}
    assert report["doctor"]["dead_relu"]["skipped"].startswith("skipped: dead-unit count")
    assert "count" in report["doctor"]["mislabelled"]
    assert 0 < report["metrics"]["accuracy"] <= 1 and report["calibration"]["temperature"] > 0
    page = html.read_text()
    assert report["robustness"]["skipped"] in page
    assert "For every analysis in full: neuroclass report" in page
    assert 'class="chart"' not in page  # no charts
    assert budget_lines(html) == [p["line"] for p in budget["parts"] if p["run"] == "skip"]
    assert len(budget_lines(html)) == 4


def test_a_report_with_plenty_of_time_runs_every_analysis(run_copy, tmp_path):
    clock = FakeClock(5.0)
    html = write_report(run_copy, out=tmp_path / "r" / "report.html", deadline=5.0 + 3600, clock=clock)
    report = json.loads(html.with_suffix(".json").read_text())
    budget = report["report"]["budget"]
    assert budget["seconds_left"] == 3600.0
    assert {p["name"]: p["run"] for p in budget["parts"]} == dict.fromkeys(OPTIONAL, "full")
    assert report["robustness"]["examples"] == min(ROBUSTNESS_EXAMPLES, report["metrics"]["n"])
    assert "skipped" not in report["data"]["leakage"] and "sample" not in report["data"]["leakage"]["compared"]
    assert report["doctor"]["dead_relu"]["units"] > 0 and "count" in report["doctor"]["mislabelled"]
    page = html.read_text()
    assert "skipped:" not in page and 'class="chart"' in page
    assert budget_lines(html) == []


def test_a_report_with_some_time_left_runs_a_sample_of_an_analysis_and_skips_what_follows(run_copy, tmp_path):
    timing = json.loads((run_copy / "timing.json").read_text())
    timing["test_seconds"] = 0.01 * len(np.load(run_copy / "split.npz")["test"])  # as on a slow machine
    (run_copy / "timing.json").write_text(json.dumps(timing))
    box = time_box(load_inputs(run_copy), deadline=0.0, clock=FakeClock())  # the costs write_report sees
    assert box.forward >= 0.005  # 10 ms a test example, under the run's one or two views
    parts = {p.name: p for p in box.parts}
    dead = parts["dead_relu"]
    assert dead.least < dead.examples
    # the clock stands still: each part sees the time left less what the parts before it in priority
    # that have not run yet will take. The dead-unit count runs after the leakage check: enough for
    # the charts, the mislabel search, the pictures, and for the dead-unit count less than in full
    first = sum(parts[name].seconds(parts[name].examples, box.forward)
                for name in ("charts", "mislabelled", "example_pictures"))
    spare = (dead.seconds(dead.least, box.forward) / SAMPLE_SHARE + dead.seconds(dead.examples, box.forward)) / 2
    sample = dead.most_within(SAMPLE_SHARE * spare, box.forward)
    assert dead.least <= sample < dead.examples
    html = write_report(run_copy, out=tmp_path / "r" / "report.html", deadline=box.finish + first + spare,
                        clock=FakeClock())
    report = json.loads(html.with_suffix(".json").read_text())
    runs = {p["name"]: (p["run"], p["examples"]) for p in report["report"]["budget"]["parts"]}
    assert runs["dead_relu"] == ("sample", sample)
    assert runs["charts"] == ("full", 1) and runs["robustness"] == ("skip", 0)
    assert report["doctor"]["dead_relu"]["units"] > 0
    page = html.read_text()
    assert f"sampled: dead-unit count on {sample:,} of {dead.examples:,} training examples" in page
    assert "skipped: robustness checks" in page and 'class="chart"' in page


def test_a_leakage_check_on_a_sample_names_positions_in_the_whole_training_split(run_copy):
    inputs = load_inputs(run_copy)
    train = inputs.indices["train"]
    copies = inputs.dataset.x[torch.as_tensor(train[::4])]  # a quarter of the training images, again
    inputs = replace(inputs, eval_x=copies, eval_y=inputs.dataset.y[torch.as_tensor(train[::4])])
    found = leakage(inputs, limit=len(train) // 2)
    assert found["compared"].startswith(f"training split (a sample of {len(train) // 2:,} of its {len(train):,}")
    exact = [p for p in found["pairs"] if p["kind"] == "exact"]
    assert exact and found["exact"] < len(copies)  # only the copies of sampled images are found
    for pair in exact:
        assert torch.equal(inputs.dataset.x[int(train[pair["train"]])], copies[pair["test"]])


def test_without_a_deadline_the_report_is_the_full_one(run_copy, tmp_path):
    html = write_report(run_copy, out=tmp_path / "r" / "report.html")
    budget = json.loads(html.with_suffix(".json").read_text())["report"]["budget"]
    assert budget["seconds_left"] is None
    assert all(p["run"] == "full" and p["left"] is None for p in budget["parts"])


def test_a_budgeted_run_holds_back_the_reports_time_counted_from_the_start_given(tmp_path):
    cfg = quick_config(tmp_path, **{"train.time_budget": 60})
    prep = prepare(cfg, clock=FakeClock(10.0), start=4.0, report=True)
    assert prep.start == 4.0 and prep.deadline == 64.0
    assert prep.report_reserve == report_reserve(ReportSizes.of(prep.dataset, prep.splits), 60.0)
    assert prep.report_reserve.seconds > 0
    assert prepare(cfg, clock=FakeClock(10.0), report=False).report_reserve == Reserve()
    unbudgeted = prepare(quick_config(tmp_path), clock=FakeClock(10.0), report=True)
    assert unbudgeted.deadline is None and unbudgeted.report_reserve == Reserve()


def test_the_report_of_a_budgeted_run_gets_its_deadline_and_the_logits_training_computed(tmp_path):
    cfg = quick_config(tmp_path, **{"train.time_budget": 3600})
    result = train(cfg, clock=FakeClock(100.0), started=40.0)
    report = json.loads(result.report.with_suffix(".json").read_text())
    assert report["report"]["budget"]["seconds_left"] == 3540.0  # 3600 s from the start given, fake clock
    metrics = json.loads((result.path / "metrics.json").read_text())
    # the very logits of the test pass after training: the report's numbers equal metrics.json's
    assert report["metrics"]["accuracy"] == metrics["accuracy"]
    assert report["metrics"]["log_loss"] == metrics["log_loss"]


def test_the_trainer_ends_training_earlier_by_the_reports_seconds_and_keeps_the_whole_deadline():
    clock = FakeClock()
    plain = TrainState(max_epochs=5, steps_per_epoch=10, deadline=100.0, clock=clock)
    held = TrainState(max_epochs=5, steps_per_epoch=10, deadline=100.0, clock=clock, reserve_seconds=7.5)
    assert held.finish_seconds() == pytest.approx(plain.finish_seconds() + 7.5)
    assert held.end == pytest.approx(plain.end - 7.5)
    assert held.deadline == 100.0  # what a checkpoint records as the budget left: the report's share included
