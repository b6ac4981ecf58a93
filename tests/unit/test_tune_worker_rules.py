"""What lets several `neuroclass tune` workers share one study: of two trials asked for the last
place at once the first runs, a worker waits for the others' last trials, trial records name their
run folders from any folder, --heartbeat reaches the storage, and a worker whose best run is on
another machine says so. (Real workers on PostgreSQL: tests/integration/test_tune_workers.py.)"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError
from neuroclass.tuning.search import GRACE_HEARTBEATS
from neuroclass.tuning.settings import TuneSettings, settings_of
from neuroclass.tuning.storage import GRACE_SECONDS, HEARTBEAT_SECONDS
from neuroclass.tuning.trials import earlier_defaults, is_surplus, running_count, wait_for_workers

FAST = ["--model", "mlp", "--set", "model.options.hidden=[16]", "--set", "train.tta=none", "--epochs", "1",
        "--sampler", "random", "--pruner", "none"]


def _study_with_done(done: int) -> optuna.Study:
    study = optuna.create_study()
    for _ in range(done):
        study.tell(study.ask(), 0.5)
    return study


def test_of_two_trials_asked_at_once_for_the_last_place_the_first_runs():
    study = _study_with_done(2)
    first, second = study.ask(), study.ask()  # two workers ask at the same moment; both RUNNING
    assert not is_surplus(study, first.number, 3)
    assert is_surplus(study, second.number, 3)
    assert not is_surplus(study, second.number, 4)  # two places left: both run


def test_a_trial_marked_surplus_takes_no_place():
    study = _study_with_done(2)
    first = study.ask()
    first.set_user_attr("surplus", True)  # judged one too many: it fails without training
    second = study.ask()
    assert running_count(study) == 1
    assert not is_surplus(study, second.number, 3)


def test_a_worker_waits_while_the_last_trials_run_elsewhere():
    study = _study_with_done(2)
    elsewhere = study.ask()
    sleeps = []

    def sleep(seconds: float) -> None:  # the other worker finishes its trial meanwhile
        sleeps.append(seconds)
        study.tell(elsewhere, 0.7)

    wait_for_workers(study, 3, left=lambda: float("inf"), sleep=sleep)
    assert sleeps == [1.0]


def test_a_worker_does_not_wait_for_a_surplus_trial():
    study = _study_with_done(2)
    study.ask().set_user_attr("surplus", True)

    def sleep(seconds: float) -> None:
        raise AssertionError("waited for a trial that will not train")

    wait_for_workers(study, 3, left=lambda: float("inf"), sleep=sleep)


def test_heartbeat_below_one_second_is_refused():
    with pytest.raises(NeuroclassError, match=r"--heartbeat must be >= 1\. Got 0"):
        TuneSettings(load_config(), trials=2, heartbeat=0).validate()


def test_the_help_states_the_heartbeat_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert f"(default {HEARTBEAT_SECONDS} s)" in shown and f"silent for {GRACE_HEARTBEATS} heartbeats" in shown
    assert GRACE_HEARTBEATS * HEARTBEAT_SECONDS == GRACE_SECONDS  # the storage's own default grace


def test_trials_record_absolute_run_folders_heartbeat_and_a_best_run_elsewhere_is_named(tmp_path, monkeypatch,
                                                                                         capsys):
    # one search checks both records (a search costs seconds): the run folders and --heartbeat
    monkeypatch.chdir(tmp_path)  # --out relative to here; other workers read the record from elsewhere
    assert main(["tune", "digits", *FAST, "--trials", "2", "--heartbeat", "2", "--out", "runs"]) == 0
    (folder,) = Path("runs").glob("tune-*")
    given = TuneSettings(load_config())
    assert json.loads((folder / "tune.json").read_text())["heartbeat"] == 2
    assert settings_of(folder, given).heartbeat == 2
    study = optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}")
    runs = [Path(t.user_attrs["run"]) for t in study.trials]
    assert all(run.is_absolute() and run.is_dir() for run in runs)

    # the best run as seen by a worker on another machine: not here
    best = Path(study.best_trial.user_attrs["run"])
    shutil.move(best, tmp_path / "elsewhere")
    capsys.readouterr()
    assert main(["tune", "--resume", str(folder)]) == 0
    shown = capsys.readouterr().out
    rows = json.loads((folder / "leaderboard.json").read_text())["rows"]
    assert rows[0]["trial"] == study.best_trial.number and rows[0]["test"] is None
    assert f"best run: {rows[0]['run']} is not on this machine" in shown
    assert "test accuracy" not in shown
    assert not (folder / "best").is_symlink()  # the link to the former best run is gone

    record = json.loads((folder / "tune.json").read_text())
    assert record["heartbeat"] == 2  # kept by the resume
    del record["heartbeat"]  # a study folder written before --heartbeat existed
    (folder / "tune.json").write_text(json.dumps(record))
    assert settings_of(folder, given).heartbeat == HEARTBEAT_SECONDS


def test_workers_that_both_queued_the_defaults_run_them_once(tmp_path):
    from neuroclass.tuning.objective import TrialPlan, run_trial
    from neuroclass.tuning.space import parse_space

    base = load_config(overrides=["data.source=digits", "model.name=mlp"])
    study = optuna.create_study(direction="maximize")
    for _ in range(2):  # two workers saw the new study empty at once
        study.enqueue_trial({"optim.lr": 0.004}, user_attrs={"defaults": True})
    space = parse_space({"optim.lr": [0.004, 0.01]}, base, "s")
    plan = TrialPlan(base, space, "accuracy", tmp_path, lambda rung: None)
    first, second = study.ask(), study.ask()  # the first worker is running trial 0
    with pytest.raises(NeuroclassError, match="trial 1 not run: trial 0 runs the config's own values"):
        run_trial(second, plan)
    assert second.user_attrs["surplus"] and first.user_attrs.get("surplus") is None
    assert not tmp_path.joinpath("trial-0001").exists()
    # the first one's worker dies: Optuna's retry (which copies its user attributes) is no duplicate
    study.tell(first, state=optuna.trial.TrialState.FAIL)
    with pytest.warns(optuna.exceptions.ExperimentalWarning):  # Optuna marks the callback experimental
        optuna.storages.RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    retry = study.ask()
    assert retry.user_attrs["defaults"] and earlier_defaults(study, retry) is None
