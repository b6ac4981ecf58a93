"""`neuroclass tune` end to end on digits with a small MLP: grids run exactly, pruned trials leave
nothing, a stop is resumed without repeating a finished trial, and bad input leaves no study behind."""
from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.evaluation.report import write_report
from neuroclass.inference import Predictor
from neuroclass.inference.ensemble import load_predictor
from neuroclass.runs import RunFolder
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.tuning.objective import TrialPlan, run_trial
from neuroclass.tuning.search import SearchInterrupted, tune
from neuroclass.tuning.settings import TuneSettings
from neuroclass.tuning.space import parse_space

FAST = ["--model", "mlp", "--set", "model.options.hidden=[32]", "--set", "train.tta=none"]


def _study(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}")


def _only_study(out: Path) -> Path:
    (folder,) = out.glob("tune-*")
    return folder


def test_grid_of_2x2_runs_exactly_4_trials(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: [0.001, 0.01]\ntrain.batch_size: [64, 128]\n")
    code = main(["tune", "digits", *FAST, "--sampler", "grid", "--space", str(space), "--epochs", "2",
                 "--pruner", "none", "--ensemble", "2", "--out", str(tmp_path / "runs")])
    assert code == 0
    folder = _only_study(tmp_path / "runs")
    rows = json.loads((folder / "leaderboard.json").read_text())["rows"]
    assert len(rows) == 4 and all(r["state"] == "complete" for r in rows)
    tried = {(r["params"]["optim.lr"], r["params"]["train.batch_size"]) for r in rows}
    assert tried == set(itertools.product([0.001, 0.01], [64, 128]))
    assert rows[0]["value"] == max(r["value"] for r in rows)
    assert rows[0]["test"]["accuracy"] > 0.5 and all(r["test"] is None for r in rows[1:])  # test: best only
    assert len((folder / "leaderboard.csv").read_text().splitlines()) == 5
    best = RunFolder.open(folder / "best")
    assert best.config().optim.lr == rows[0]["params"]["optim.lr"]
    assert Predictor.from_run(folder / "best").classes == [str(i) for i in range(10)]
    assert sorted(p.name for p in (folder / "trials").iterdir()) == [f"trial-000{i}" for i in range(4)]
    html = (folder / "report.html").read_text()
    assert "Leaderboard" in html and "Parameter importances" in html and "best/report.html" in html
    members = json.loads((folder / "ensemble-top2" / "ensemble.json").read_text())["members"]
    assert [(folder / "ensemble-top2" / m["path"]).resolve() for m in members] == [
        (folder / r["run"]).resolve() for r in rows[:2]]  # the two best trials
    assert load_predictor(folder / "ensemble-top2").classes == [str(i) for i in range(10)]
    out = capsys.readouterr().out
    assert "trial 3:" in out and "best trial" in out and "Trial 0 finished" not in out


class _PruneAll(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_a_pruned_trial_leaves_no_run_folder(tmp_path):
    base = load_config(overrides=["data.source=digits", "model.name=mlp", "model.options.hidden=[32]",
                                  "train.epochs=3", "train.tta=none"])
    study = optuna.create_study(direction="maximize", pruner=_PruneAll())
    asked = []
    plan = TrialPlan(base, parse_space({"optim.lr": [0.01]}, base, "s"), "accuracy", tmp_path / "trials",
                     lambda rung: asked.append(rung))
    study.optimize(lambda trial: run_trial(trial, plan), n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED and trial.user_attrs["pruned_at_epoch"] == 1
    trials = tmp_path / "trials"  # the run folder made it, and removed it with the run
    assert not trials.exists() or not any(trials.iterdir())
    # a trial promoted into a higher rung is not pruned (its epochs do not compare with rung 0's)
    study.enqueue_trial({"optim.lr": 0.01}, user_attrs={"rung": 1, "promoted_from": 0})
    study.optimize(lambda trial: run_trial(trial, plan), n_trials=1)
    assert study.trials[1].state == TrialState.COMPLETE and study.trials[1].user_attrs["rung"] == 1
    assert asked == [0, 1]  # each trial asked for its budget by its rung


class _Reports:
    """An Optuna trial's report/should_prune, recorded."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = []

    def report(self, value: float, step: int) -> None:
        self.points.append((step, value))

    def should_prune(self) -> bool:
        return False

    def set_user_attr(self, key, value) -> None:  # pragma: no cover - not pruned here
        raise AssertionError("not pruned")


def test_pruning_reports_the_point_of_the_schedule_not_the_epoch():
    from types import SimpleNamespace

    from neuroclass.tuning.objective import PRUNING_STEPS, Pruning

    trial = _Reports()
    pruning = Pruning(trial, "accuracy")
    for epoch, (step, value) in enumerate([(23, 0.5), (47, 0.7), (100, 0.9)], start=1):
        state = SimpleNamespace(step=step, epoch=epoch, planned_steps=lambda: 100,
                                history=[{"val_accuracy": value}])
        pruning.on_epoch_end(state, None)
    # 23% of the schedule is point 5 of 20; each later point gets the value known by then
    assert trial.points == [(5, 0.5), *[(p, 0.7) for p in range(6, 10)],
                            *[(p, 0.9) for p in range(10, PRUNING_STEPS + 1)]]


class _StopDuring(Callback):
    """Requests the stop during the given trial's first epoch (the nth fit)."""

    def __init__(self, stop: StopRequest, fit: int) -> None:
        self.stop, self.fit, self.fits = stop, fit, 0

    def on_fit_start(self, state, model) -> None:
        self.fits += 1
        if self.fits == self.fit:
            self.stop.request("interrupted (test)")


def test_a_stopped_search_resumes_without_repeating_a_finished_trial(tmp_path):
    base = load_config(overrides=["data.source=digits", "model.name=mlp", "model.options.hidden=[32]",
                                  "train.epochs=2", "train.tta=none", f"out={tmp_path / 'runs'}"])
    settings = TuneSettings(base, trials=4, sampler="random", pruner="none", report=False)
    stop = StopRequest()
    with pytest.raises(SearchInterrupted) as err:
        tune(settings, stop=stop, callbacks=(_StopDuring(stop, 2),))
    folder = err.value.folder
    assert "--resume" in str(err.value)
    states = [t.state for t in _study(folder).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
    assert not list((folder / "trials").glob(".partial-*"))
    assert (folder / "leaderboard.csv").exists()  # the finished trial is on the board already
    interrupted_params = _study(folder).trials[1].params

    result = tune(settings, resume=folder)
    trials = _study(folder).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    assert len({json.dumps(t.params, sort_keys=True) for t in complete}) == 4  # none run twice
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].params == interrupted_params
    assert result.best is not None and (folder / "best").resolve() == result.best.resolve()
    # report=False (--no-report), kept by the resume: no report in the best run, the study's own written
    assert not (result.best / "report.html").exists() and (folder / "report.html").exists()


def test_another_space_under_an_existing_study_name_is_refused(tmp_path, capsys):
    db = tmp_path / "shared.db"
    first = ["tune", "digits", *FAST, "--trials", "1", "--epochs", "1", "--storage", f"sqlite:///{db}",
             "--study", "s1", "--out", str(tmp_path / "a")]
    assert main(first + ["--set", "train.seed=0"]) == 0
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: [0.001, 0.01]\n")
    code = main(["tune", "digits", *FAST, "--trials", "1", "--epochs", "1", "--storage", f"sqlite:///{db}",
                 "--study", "s1", "--space", str(space), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "was created with another search space (differs in:" in err[-1] and "optim.lr" in err[-1]
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").glob("tune-*"))
    with sqlite3.connect(db) as con:  # the existing study lost nothing
        assert con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0] == 1


@pytest.mark.parametrize("extra, words", [
    (["--sampler", "grid", "--trials", "3"], "the grid has 12 points but --trials is 3"),
    (["--trials", "2", "--space", "{missing}"], "file not found"),
    (["--trials", "2", "--cv", "1"], "--cv must be >= 2"),
    ([], "needs an end"),
    (["--trials", "2", "--storage", "postgresql://tuner:secret@127.0.0.1:9/db"], "tuner:***@127.0.0.1:9"),
])
def test_bad_settings_fail_with_one_line_and_leave_no_study(tmp_path, capsys, extra, words):
    extra = [e.format(missing=tmp_path / "nope.yaml") for e in extra]
    code = main(["tune", "digits", *FAST, *extra, "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0] and "secret" not in err[0]
    assert not list((tmp_path / "runs").glob("tune-*")) if (tmp_path / "runs").exists() else True


def test_cv_inside_tune_scores_each_trial_by_the_folds_mean(tmp_path):
    base = load_config(overrides=["data.source=digits", "model.name=mlp", "model.options.hidden=[32]",
                                  "train.epochs=1", "train.tta=none", f"out={tmp_path / 'runs'}"])
    result = tune(TuneSettings(base, trials=2, sampler="random", pruner="none", cv=2))
    for row in result.rows:
        cv = json.loads((result.folder / row["run"] / "cv.json").read_text())
        assert row["value"] == pytest.approx(cv["metrics"]["accuracy"]["mean"])
        assert sorted(p.name for p in (result.folder / row["run"] / "folds").iterdir()) == ["fold-1", "fold-2"]
    html = write_report(result.best).read_text()  # a cross-validation's report shows its folds
    assert "Cross-validation" in html and "out-of-fold" in html


def test_the_printed_retrain_command_trains_the_best_values_on_train_and_validation(tmp_path, capsys):
    import shlex

    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: [0.001, 0.01]\n")
    out = tmp_path / "runs"
    assert main(["tune", "digits", *FAST, "--sampler", "grid", "--space", str(space), "--epochs", "2",
                 "--pruner", "none", "--seed", "3", "--out", str(out)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("retrain the best values"))
    words = shlex.split(line.split(": ", 1)[1])
    best = json.loads((_only_study(out) / "leaderboard.json").read_text())["rows"][0]
    assert words[:3] == ["neuroclass", "train", "digits"]
    assert f"optim.lr={best['params']['optim.lr']}" in words and "data.val_fraction=0" in words
    assert "train.tta=none" in words and "model.options.hidden=[32]" in words  # the views, the base's --set
    assert words[words.index("--seed") + 1] == "3" and words[words.index("--epochs") + 1] == "2"
    assert main(words[1:]) == 0  # the command runs as printed
    retrained = max((p for p in out.iterdir() if p.name.startswith("digits-")), key=lambda p: p.stat().st_mtime)
    split = json.loads((retrained / "split.json").read_text())
    tuned = json.loads((_only_study(out) / "best" / "split.json").read_text())
    assert split["sizes"]["val"] == 0 and split["sizes"]["test"] == tuned["sizes"]["test"]
    assert split["sizes"]["train"] == tuned["sizes"]["train"] + tuned["sizes"]["val"]
    assert RunFolder.open(retrained).config().optim.lr == best["params"]["optim.lr"]


def test_retrain_values_keep_a_shipped_or_absent_validation_split(tmp_path):
    from neuroclass.errors import NeuroclassError
    from neuroclass.tuning.refit import retrain_values

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.json").write_text(json.dumps({"inference": {"tta": "flip", "tta_shift": 1, "temperature": 1.2}}))
    (run / "split.json").write_text(json.dumps({"val": "stratified", "test": "shipped"}))
    assert retrain_values(run, {"optim.lr": 0.01}) == {"optim.lr": 0.01, "data.val_fraction": 0, "train.tta": "flip"}
    for val in ("shipped", "none"):
        (run / "split.json").write_text(json.dumps({"val": val, "test": "shipped"}))
        assert retrain_values(run, {"optim.lr": 0.01}) == {"optim.lr": 0.01}
    (run / "split.json").unlink()
    with pytest.raises(NeuroclassError, match="split.json: cannot read the best trial's record"):
        retrain_values(run, {})


def test_a_moved_study_resumes_with_its_trials_found_in_their_new_place(tmp_path):
    import shutil

    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: [0.001, 0.003, 0.01]\n")
    out = tmp_path / "runs"
    assert main(["tune", "digits", *FAST, "--sampler", "random", "--space", str(space), "--epochs", "1",
                 "--pruner", "none", "--trials", "2", "--ensemble", "2", "--quiet", "--out", str(out)]) == 0
    moved = tmp_path / "elsewhere" / "study"
    moved.parent.mkdir()
    shutil.move(str(_only_study(out)), str(moved))
    assert main(["tune", "--resume", str(moved), "--trials", "3", "--ensemble", "2", "--quiet"]) == 0
    rows = json.loads((moved / "leaderboard.json").read_text())["rows"]
    assert len(rows) == 3 and all(r["run"].startswith("trials/trial-") for r in rows)
    assert (moved / "best").resolve().parent == (moved / "trials").resolve()
    members = json.loads((moved / "ensemble-top2" / "ensemble.json").read_text())["members"]
    assert all((moved / "ensemble-top2" / m["path"]).resolve().parent == (moved / "trials").resolve()
               for m in members)
