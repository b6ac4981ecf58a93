"""`neuroclass tune`'s command line: a resume refuses the options that would change the study and
takes the ones it documents, a refused tune leaves no folder behind, and its messages say what
the user can do (SQLite paths, short budgets, a worker with nothing to run, a smaller ensemble)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from neuroclass.cli import _parser, main
from neuroclass.cli.tune import DEFAULTS, _resume_folder
from neuroclass.errors import NeuroclassError
from neuroclass.tuning.search import _first_line
from neuroclass.tuning.storage import HEARTBEAT_SECONDS, open_storage

FAST = ["--model", "mlp", "--set", "model.options.hidden=[32]", "--set", "train.tta=none"]
RECORDED = "neuroclass tune digits --model mlp --trials 1 --epochs 1 --out runs"


def _study_folder(tmp_path: Path) -> Path:
    """A study folder's record as tune writes it (tune.json), without training anything."""
    folder = tmp_path / "runs" / "tune-digits-20260101-000000"
    folder.mkdir(parents=True)
    record = {"space": "space.yaml", "trials": 1, "sampler": "tpe", "metric": "accuracy", "pruner": "median",
              "cv": None, "storage": None, "study": None, "ensemble": None, "heartbeat": 10, "rungs": None,
              "report": True, "command": RECORDED, "space_source": "default space of mlp"}
    (folder / "tune.json").write_text(json.dumps(record))
    (folder / "study.db").write_bytes(b"not touched")
    return folder


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("words, named", [
    (["--metric", "log_loss"], "--metric (recorded: accuracy)"),
    (["--sampler", "random"], "--sampler (recorded: tpe)"),
    (["--cv", "3"], "--cv (recorded: not given)"),
    (["--pruner", "none"], "--pruner (recorded: median)"),
    (["--rungs", "2"], "--rungs (recorded: not given)"),
    (["--model", "cnn"], "--model (recorded: mlp)"),
    (["--label-column", "y"], "--label-column (recorded: not given)"),
    (["--config", "c.yaml"], "--config (recorded: not given)"),
    (["--epochs", "5"], "--epochs (recorded: 1)"),
    (["--seed", "3"], "--seed (recorded: not given)"),
    (["--heartbeat", "30"], "--heartbeat (recorded: 10)"),
    (["--storage", "sqlite:///x.db"], "--storage (recorded: not given)"),
    (["--space", "x.yaml"], "--space (recorded: not given)"),
    (["--set", "optim.lr=0.1"], "--set (recorded: not given)"),
    (["fashion-mnist"], "DATA (recorded: digits)"),
])
def test_resume_refuses_an_option_that_changes_the_study(tmp_path, capsys, words, named):
    folder = _study_folder(tmp_path)
    before = _digest(folder)
    assert main(["tune", *words, "--resume", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neuroclass: error: --resume continues the search with its recorded settings; drop {named}"]
    assert _digest(folder) == before


def test_resume_names_every_changed_option_in_one_line(tmp_path, capsys):
    folder = _study_folder(tmp_path)
    assert main(["tune", "--resume", str(folder), "--metric", "macro_f1", "--epochs", "2"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    # in the order of RECORDED_OPTIONS
    assert line.endswith("drop --epochs (recorded: 1), --metric (recorded: accuracy)")


def test_resume_takes_the_recorded_values_and_its_own_options(tmp_path):
    """The first command with --resume added, the defaults written out, and --time-budget,
    --trials, --ensemble, --no-report and --quiet: no change to the study's settings."""
    folder = _study_folder(tmp_path)
    words = ["digits", "--model", "mlp", "--epochs", "1", "--out", "runs", "--sampler", "tpe", "--metric",
             "accuracy", "--pruner", "median", "--heartbeat", "10", "--time-budget", "1m", "--trials", "3",
             "--ensemble", "2", "--no-report", "--quiet"]
    args = _parser().parse_args(["tune", *words, "--resume", str(folder)])
    assert _resume_folder(args) == folder
    newest = _parser().parse_args(["tune", "--resume", "--out", str(tmp_path / "runs"), "--trials", "2"])
    assert _resume_folder(newest) == folder


def test_resumed_end_takes_the_given_ensemble_and_no_report():
    from neuroclass.config import Config
    from neuroclass.tuning.settings import TuneSettings, resumed_end

    recorded = TuneSettings(Config(), trials=4, ensemble=None, report=True)
    study = optuna.create_study()
    given = TuneSettings(Config(), ensemble=3, report=False)
    end = resumed_end(recorded, study, given)
    assert (end.ensemble, end.report, end.trials) == (3, False, 4)
    assert resumed_end(recorded, study, TuneSettings(Config())).ensemble is None


@pytest.mark.parametrize("words", [
    ["--sampler", "grid", "--time-budget", "5s"],  # refused after the data is read
    ["--trials", "1", "--epochs", "1", "--storage", "sqlite:///no-such-folder/x/study.db"],
    ["--trials", "0"],
])
def test_a_refused_tune_leaves_no_out_folder(tmp_path, capsys, words):
    out = tmp_path / "made" / "for" / "tune"
    assert main(["tune", "digits", *FAST, *words, "--out", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "made").exists()


def test_a_refused_tune_keeps_an_out_folder_that_was_there(tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    assert main(["tune", "digits", *FAST, "--trials", "0", "--out", str(out)]) == 2
    assert out.is_dir()


def test_sqlite_with_three_slashes_names_the_relative_path_and_four_slashes(tmp_path, monkeypatch):
    (tmp_path / "x").mkdir()
    monkeypatch.chdir(tmp_path / "x")  # the URL's path 'tmp/.../x/s.db' is relative to here
    url = f"sqlite://{tmp_path / 'x' / 's.db'}"  # three slashes: the user meant the absolute path
    with pytest.raises(NeuroclassError) as info:
        open_storage(url, tmp_path / "study")
    relative = str(tmp_path / "x" / "s.db").lstrip("/")
    message = str(info.value)
    assert f"SQLite tried '{relative}' (relative to the current folder)" in message
    assert f"write four slashes: sqlite:///{tmp_path / 'x' / 's.db'}" in message
    assert "\n" not in message


def test_sqlite_with_an_absolute_path_in_a_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(NeuroclassError, match=f"whose folder '{tmp_path / 'none'}' does not exist; create that"):
        open_storage(f"sqlite:///{tmp_path / 'none' / 's.db'}", tmp_path / "study")


def test_a_grid_too_big_for_the_budget_asks_for_a_smaller_grid(tmp_path, capsys):
    assert main(["tune", "digits", *FAST, "--sampler", "grid", "--time-budget", "20s", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "give a longer --time-budget or a smaller grid (--space)" in err and "--trials" not in err


def _search(trials: int | None, done: int) -> SimpleNamespace:
    study = optuna.create_study()
    for _ in range(done):
        study.add_trial(optuna.trial.create_trial(value=0.5))
    base = SimpleNamespace(data=SimpleNamespace(source="digits"), model=SimpleNamespace(name="mlp"))
    settings = SimpleNamespace(trials=trials, sampler="tpe", pruner="median", metric="accuracy", base=base)
    space = SimpleNamespace(describe=lambda: "optim.lr 0.001..0.1 (log)", source="default space of mlp")
    return SimpleNamespace(settings=settings, trial_seconds=None, planned=trials or 20, rungs=None, study=study,
                           space=space, folder=Path("runs/tune-digits"))


def test_first_line_counts_one_trial_in_the_singular():
    assert _first_line(_search(1, 0)).startswith("tune: 1 trial (tpe, median pruning) on digits, mlp")


def test_first_line_says_when_a_worker_has_nothing_to_run():
    line = _first_line(_search(1, 2))
    assert line.startswith("tune: nothing to run: 2 trials are done, --trials 1 (") and "done before" not in line


def test_an_ensemble_of_fewer_finished_trials_is_named_by_its_members(tmp_path, capsys):
    assert main(["tune", "digits", *FAST, "--trials", "2", "--epochs", "1", "--pruner", "none", "--ensemble", "5",
                 "--no-report", "--out", str(tmp_path)]) == 0
    (folder,) = tmp_path.glob("tune-*")
    assert [p.name for p in folder.glob("ensemble-*")] == ["ensemble-top2"]
    assert len(json.loads((folder / "ensemble-top2" / "ensemble.json").read_text())["members"]) == 2
    out = capsys.readouterr().out
    assert f"ensemble of the top 2 trials (--ensemble 5, but 2 finished here): {folder / 'ensemble-top2'}" in out


def test_the_written_out_heartbeat_default_is_the_storage_one():
    assert DEFAULTS["heartbeat"] == HEARTBEAT_SECONDS


def test_resume_of_a_folder_without_a_record_says_it_is_not_a_study_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["tune", "--resume", str(tmp_path / "empty"), "--metric", "macro_f1"]) == 2
    assert "not a study folder of neuroclass tune" in capsys.readouterr().err
