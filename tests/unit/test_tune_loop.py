"""The search loop's ends: folds checked once before any trial, trials that keep failing alike, a
stop request between trials, Optuna's failed-trial tracebacks, the study name a copied folder
resumes, and the trial share a resume keeps."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.tuning.search import Search, SearchInterrupted, tune
from neuroclass.tuning.settings import TuneSettings
from neuroclass.tuning.space import default_space
from neuroclass.tuning.trials import (OPTUNA_TRIAL_LOGGER, REPEATS_BEFORE_ANY, SHARE_ATTR, recorded_share,
                                      repeated_failure)


def _base(tmp_path: Path, *extra: str):
    return load_config(overrides=["data.source=digits", "model.name=mlp", "model.options.hidden=[16]",
                                  "train.epochs=1", "train.tta=none", f"out={tmp_path / 'runs'}", *extra])


def _settings(tmp_path: Path, trials: int = 2) -> TuneSettings:
    return TuneSettings(_base(tmp_path), trials=trials, sampler="random", pruner="none", report=False)


def _studies(out: Path) -> list[Path]:
    return sorted(out.glob("tune-*"))


def _trials(folder: Path, name: str | None = None) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{folder / 'study.db'}"
    return optuna.load_study(study_name=name or folder.name, storage=storage).trials


class _FailAtStart(Callback):
    """Every trial fails as its training starts, with the same data error."""

    def on_fit_start(self, state, model) -> None:
        raise NeuroclassError("data: column 'x' holds text; give numbers")


class _StopAtEnd(Callback):
    """A stop request as the first trial's training ends (the trial still finishes)."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop

    def on_fit_end(self, state, model) -> None:
        self.stop.request("interrupted by SIGINT")


class _StopAndFail(Callback):
    """A stop request, then the trial fails before training (as bad data would)."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop

    def on_fit_start(self, state, model) -> None:
        self.stop.request("interrupted by SIGTERM")
        raise NeuroclassError("data: bad")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _tiny_csv(path: Path, small_class_rows: int = 4) -> Path:
    rows = ["x1,x2,cls"]
    for label, count in (("a", 30), ("b", 30), ("c", small_class_rows)):
        rows += [f"{i * 0.1:.1f},{(i * 7 % 11) * 0.1:.1f},{label}" for i in range(count)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_too_many_folds_are_refused_before_any_trial_with_trains_line(tmp_path, capsys):
    data = _tiny_csv(tmp_path / "tiny.csv")
    code = main(["tune", str(data), "--label-column", "cls", "--cv", "5", "--trials", "2", "--epochs", "2",
                 "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert "use at most 3 folds (--cv 3)" in err and len(err.strip().splitlines()) == 1
    assert not _studies(tmp_path / "runs")  # no study started, no trial run


def test_trials_failing_alike_end_the_search_with_that_error(tmp_path):
    logger, records = logging.getLogger(OPTUNA_TRIAL_LOGGER), _Records()
    logger.addHandler(records)
    try:
        with pytest.raises(NeuroclassError, match="column 'x' holds text") as err:
            tune(_settings(tmp_path), callbacks=(_FailAtStart(),))
    finally:
        logger.removeHandler(records)
    assert "\n" not in str(err.value)
    (folder,) = _studies(tmp_path / "runs")
    trials = _trials(folder)
    assert [t.state for t in trials] == [TrialState.FAIL] * REPEATS_BEFORE_ANY
    assert not [m for m in records.messages if "failed with" in m]  # the search says it in one line
    assert (folder / "leaderboard.csv").exists()


def test_optuna_failed_trial_warnings_are_kept_when_asked(tmp_path):
    logger, records = logging.getLogger(OPTUNA_TRIAL_LOGGER), _Records()
    logger.addHandler(records)
    try:
        with pytest.raises(NeuroclassError):
            tune(_settings(tmp_path), callbacks=(_FailAtStart(),), show_failures=True)
    finally:
        logger.removeHandler(records)
    assert len([m for m in records.messages if "failed with parameters" in m]) == REPEATS_BEFORE_ANY
    assert not logger.filters  # the filter of a search without show_failures is gone too


def test_repeated_failure_needs_the_same_error_in_a_row():
    study = optuna.create_study()
    for error in ("a", "b", "b"):
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"error": error}))
    assert repeated_failure(study) is None
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"error": "b", "interrupted": True}))
    assert repeated_failure(study) is None  # an interrupted trial is no failure of the data
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"error": "b"}))
    assert repeated_failure(study) == ("b", 3)
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.5))
    for _ in range(3):
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"error": "b"}))
    assert repeated_failure(study) is None  # after a finished trial, a longer run of failures ends it


def test_a_stop_as_a_trial_ends_starts_no_other_trial(tmp_path):
    stop = StopRequest()
    with pytest.raises(SearchInterrupted, match="SIGINT"):
        tune(_settings(tmp_path, trials=3), stop=stop, callbacks=(_StopAtEnd(stop),))
    (folder,) = _studies(tmp_path / "runs")
    assert [t.state for t in _trials(folder)] == [TrialState.COMPLETE]


def test_a_stop_while_trials_fail_before_training_ends_the_search(tmp_path):
    stop = StopRequest()
    with pytest.raises(SearchInterrupted, match="SIGTERM"):
        tune(_settings(tmp_path, trials=3), stop=stop, callbacks=(_StopAndFail(stop),))
    (folder,) = _studies(tmp_path / "runs")
    assert len(_trials(folder)) == 1


def test_a_copied_study_folder_resumes_its_own_study(tmp_path):
    tune(_settings(tmp_path, trials=1))
    (folder,) = _studies(tmp_path / "runs")
    assert json.loads((folder / "tune.json").read_text())["study"] == folder.name
    copy = tmp_path / "bc_copy"
    shutil.copytree(folder, copy, symlinks=True)  # as cp -r copies the best link
    tune(_settings(tmp_path, trials=2), resume=copy)
    assert optuna.get_all_study_names(f"sqlite:///{copy / 'study.db'}") == [folder.name]
    assert [t.state for t in _trials(copy, folder.name)] == [TrialState.COMPLETE] * 2
    assert sorted(p.name for p in (copy / "trials").iterdir()) == ["trial-0000", "trial-0001"]


def test_a_study_recorded_without_its_name_resumes_the_only_study_in_its_storage(tmp_path):
    tune(_settings(tmp_path, trials=1))
    (folder,) = _studies(tmp_path / "runs")
    record = json.loads((folder / "tune.json").read_text())
    (folder / "tune.json").write_text(json.dumps({**record, "study": None}))  # as written before
    renamed = folder.rename(tmp_path / "renamed")
    tune(_settings(tmp_path, trials=2), resume=renamed)
    assert len(_trials(renamed, folder.name)) == 2


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _search(budget: float, study: optuna.Study, trials: int | None) -> Search:
    cfg = load_config(values={"data": {"source": "digits"}, "model": {"name": "mlp"},
                              "train": {"time_budget": budget}})
    clock = _Clock()
    return Search(TuneSettings(cfg, trials=trials, sampler="random", rungs=1), Path("."), default_space(cfg),
                  study, clock, clock())


def test_a_new_search_records_its_trial_share_and_a_resume_keeps_it():
    study = optuna.create_study(direction="maximize")
    first = _search(53.0, study, trials=4)  # 53 s less the 5 s reserve and a 2.4 s report, over 4 trials
    first.share()
    assert first.trial_seconds == pytest.approx((53.0 - 5.0 - 0.05 * 53.0) / 4)
    assert study.user_attrs[SHARE_ATTR] == pytest.approx(first.trial_seconds)
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.5,
                                              user_attrs={"time_budget": first.trial_seconds}))
    resumed = _search(200.0, study, trials=5)  # more time, and trials left: the same share each
    resumed.share()
    assert resumed.trial_seconds == pytest.approx(first.trial_seconds)
    assert resumed.next_budget() == pytest.approx(first.trial_seconds)


def test_a_study_recorded_without_its_share_keeps_its_trials_budget():
    study = optuna.create_study(direction="maximize")
    for given in (12.0, 7.5):  # the second trial started with less than its share left
        study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.5,
                                                  user_attrs={"time_budget": given}))
    assert recorded_share(study) == 12.0
    search = _search(120.0, study, trials=4)
    search.share()
    assert search.trial_seconds == 12.0
    search.clock.now = 120.0 - search.reserve - 5.0  # 5 s left: less than half a share
    assert search.should_stop()
