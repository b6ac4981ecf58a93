"""Stratified k-fold cross-validation: fold splits (data/split.py), the fold runs and the summary
folder (tuning/cv.py), and `neuroclass train --cv K`. Real training: digits, a small MLP, one epoch."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from neuroclass import data as data_mod
from neuroclass.config import DataConfig, load_config
from neuroclass.errors import NeuroclassError, RunInterrupted
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.inference import Predictor
from neuroclass.runs import RunFolder
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.tuning.cv import METRICS, check_folds, cross_validate, mean_validation_metric, summarize
from neuroclass.tuning.cv_budget import fold_budget

K = 3


def digits_config(out, *extra: str):
    """Digits (1,797 8x8 images), a 32-unit MLP, one epoch, one thread: a fold trains in under a second."""
    return load_config(overrides=["data.source=digits", "model.name=mlp", "model.options.hidden=[32]",
                                  f"out={out}", "train.epochs=1", "train.quiet=true", "train.threads=1",
                                  "train.batch_size=64", *extra])


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cv") / "runs"
    seen = []
    result = cross_validate(digits_config(out), K, on_fold=seen.append)
    return result, seen


@pytest.fixture(scope="module")
def digits():
    return data_mod.load(DataConfig(source="digits"))


def oof(result) -> dict:
    with np.load(result.path / "oof.npz", allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


# ----------------------------------------------------------------------------- the fold split

def test_folds_partition_the_pool_stratified_and_keep_the_test_split(digits):
    plain = data_mod.split(digits, 0.1, 0.2, seed=3)
    pool = np.union1d(plain.indices["train"], plain.indices["val"])
    labels = digits.y.numpy()
    expected = list(StratifiedKFold(n_splits=4, shuffle=True, random_state=3).split(pool, labels[pool]))
    vals = []
    for fold in range(1, 5):
        s = data_mod.split(digits, 0.1, 0.2, seed=3, folds=4, fold=fold)
        assert np.array_equal(s.indices["test"], plain.indices["test"])
        assert np.array_equal(s.indices["val"], np.sort(pool[expected[fold - 1][1]]))
        assert np.array_equal(np.union1d(s.indices["train"], s.indices["val"]), pool)
        assert not np.intersect1d(s.indices["train"], s.indices["val"]).size
        assert s.method == {"seed": 3, "test": "stratified", "val": "stratified k-fold", "folds": 4,
                            "fold": fold}
        # stratified: each class's share of the fold within one example of its share of the pool
        counts = np.bincount(labels[s.indices["val"]], minlength=10)
        assert np.all(np.abs(counts - np.bincount(labels[pool]) / 4) <= 1)
        vals.append(s.indices["val"])
    assert np.array_equal(np.sort(np.concatenate(vals)), pool)


def test_more_folds_than_the_smallest_class_fails_with_one_line_naming_it(tmp_path):
    # blocks: 40 images of 4 colours, 8 of each outside a 20% test split
    cfg = digits_config(tmp_path / "runs", "data.source=blocks:n=40,size=8")
    with pytest.raises(NeuroclassError) as info:
        cross_validate(cfg, 9)
    message = str(info.value)
    assert "\n" not in message and re.search(r"class '\w+' has only 8 examples", message), message
    assert "data.folds=9" in message and "--cv 8" in message, message
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.parametrize("values, words", [
    ({"folds": 5}, ["'data.folds'", "'data.fold'"]),
    ({"fold": 2}, ["'data.fold'", "'data.folds'"]),
    ({"folds": 3, "fold": 4}, ["'data.fold'", "<= data.folds (3)", "Got 4"]),
    ({"folds": 1, "fold": 1}, ["'data.folds'", ">= 2"]),
])
def test_fold_settings_are_checked_at_load(values, words):
    with pytest.raises(NeuroclassError) as info:
        load_config(values={"data": values})
    for word in words:
        assert word in str(info.value), str(info.value)


def test_fewer_than_two_folds_is_refused():
    for k in (0, 1, 2.5, True):
        with pytest.raises(NeuroclassError, match="must be a whole number >= 2"):
            check_folds(k)


# ----------------------------------------------------------------------------- the summary folder

def test_the_summary_is_an_ensemble_folder_of_ordinary_fold_runs(cv_run, digits):
    result, seen = cv_run
    files = {p.name for p in result.path.iterdir()}
    assert {"ensemble.json", "config.yaml", "split.json", "split.npz", "model.json", "metrics.json",
            "oof.npz", "cv.json", "environment.json", "folds"} <= files
    ensemble = json.loads((result.path / "ensemble.json").read_text())
    assert (ensemble["method"], ensemble["kind"], ensemble["input_shape"]) == ("mean", "image", [1, 8, 8])
    assert [m["path"] for m in ensemble["members"]] == [f"folds/fold-{i}" for i in range(1, K + 1)]
    assert json.loads((result.path / "model.json").read_text())["ensemble"] is True
    assert [f.path for f in seen] == [result.path / "folds" / f"fold-{i}" for i in range(1, K + 1)]
    for i, fold in enumerate(result.folds, start=1):
        cfg = RunFolder.open(fold.path).config()  # replays the fold
        assert (cfg.data.folds, cfg.data.fold) == (K, i)
        assert RunFolder.open(fold.path).split_record()["val"] == "stratified k-fold"
    summary = RunFolder.open(result.path)
    assert summary.environment()["data_hash"] == ensemble["data_hash"]
    own = summary.load_data(quiet=True)  # the ensemble's data and test split load like a run's
    assert np.array_equal(own.indices["test"], data_mod.split(digits, 0.1, 0.2, seed=0).indices["test"])
    assert np.array_equal(own.indices["train"], oof(result)["index"]) and own.indices["val"].size == 0


def test_oof_holds_each_pool_example_once_with_its_fold_predictors_probabilities(cv_run, digits):
    result, _ = cv_run
    rows = oof(result)
    assert rows["index"].dtype == rows["fold"].dtype == rows["label"].dtype == np.int64
    assert rows["proba"].dtype == np.float32 and rows["proba"].shape == (len(rows["index"]), 10)
    first = RunFolder.open(result.folds[0].path).split_indices()
    pool = np.union1d(first["train"], first["val"])
    assert len(np.unique(rows["index"])) == len(rows["index"])
    assert np.array_equal(rows["index"], pool)
    assert not np.intersect1d(rows["index"], first["test"]).size
    assert np.array_equal(rows["label"], digits.y.numpy()[rows["index"]])
    for fold in result.folds:
        val = RunFolder.open(fold.path).split_indices()["val"]
        mine = rows["fold"] == fold.fold
        assert np.array_equal(rows["index"][mine], val)
        expected = Predictor.from_run(fold.path, "cpu").predict_proba_tensor(digits.x[val])
        np.testing.assert_allclose(rows["proba"][mine], expected, atol=1e-6)


def test_cv_json_summarises_the_folds_as_numpy_does(cv_run):
    result, _ = cv_run
    rows = oof(result)
    summary = json.loads((result.path / "cv.json").read_text())
    assert summary["folds"] == K and summary["stratified"] is True and summary["seed"] == 0
    per_fold = [classification_metrics(rows["label"][rows["fold"] == i], rows["proba"][rows["fold"] == i],
                                       [str(c) for c in range(10)]) for i in range(1, K + 1)]
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "log_loss"):
        values = [m[name] for m in per_fold]
        assert summary["metrics"][name]["per_fold"] == pytest.approx(values, abs=1e-6)
        assert summary["metrics"][name]["mean"] == pytest.approx(np.mean(values), abs=1e-6)
        assert summary["metrics"][name]["std"] == pytest.approx(np.std(values), abs=1e-6)
        assert mean_validation_metric(result, name) == summary["metrics"][name]["mean"]
    assert summary["oof_metrics"]["n"] == len(rows["index"])
    assert summary["oof_metrics"]["accuracy"] == pytest.approx(
        np.mean(rows["proba"].argmax(1) == rows["label"]))


def test_the_fold_ensemble_test_metrics_are_the_mean_of_the_fold_predictors(cv_run, digits):
    result, _ = cv_run
    test = RunFolder.open(result.path).split_indices()["test"]
    proba = np.mean([Predictor.from_run(f.path, "cpu").predict_proba_tensor(digits.x[test])
                     for f in result.folds], axis=0)
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(np.mean(proba.argmax(1) == digits.y.numpy()[test]))
    assert metrics["log_loss"] == pytest.approx(classification_metrics(
        digits.y.numpy()[test], proba, digits.classes)["log_loss"], abs=1e-6)
    assert result.summary["fold_ensemble_test_metrics"]["accuracy"] == metrics["accuracy"]


def test_summarize_and_the_metric_names_a_search_uses():
    folds = [{"accuracy": a, "log_loss": 0.1 * a, "roc_auc_ovr_macro": auc, "top_k_accuracy": {"3": 1.0}}
             for a, auc in ((0.7, 0.9), (0.9, None))]
    out = summarize(folds)
    assert out["accuracy"] == {"mean": pytest.approx(0.8), "std": pytest.approx(0.1), "per_fold": [0.7, 0.9]}
    assert out["roc_auc_ovr_macro"]["mean"] is None and out["top_3_accuracy"]["std"] == 0.0
    assert set(METRICS) == {"accuracy", "balanced_accuracy", "macro_f1", "log_loss"}
    with pytest.raises(NeuroclassError, match="Did you mean 'macro_f1'"):
        mean_validation_metric(None, "macro-f1")


# ----------------------------------------------------------------------------- budget and atomicity

class FakeClock:
    """Seconds that move a microsecond a reading, and by ``jump`` when a fold's training ends."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now


class Jump(Callback):
    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    def on_fit_end(self, state, model) -> None:
        self.clock.now += self.seconds


def test_the_time_budget_is_shared_by_the_folds_left(tmp_path):
    clock = FakeClock()
    result = cross_validate(digits_config(tmp_path / "runs", "train.time_budget=90"), K,
                            callbacks=[Jump(clock, 10.0)], clock=clock, started=1000.0)
    budgets = [f.budget for f in result.folds]
    # fold 1: 90 / 3; fold 2: (90 - 10) / 2; fold 3: (90 - 20) / 1, each run's time_budget
    assert budgets == pytest.approx([30.0, 40.0, 70.0], abs=0.01)
    configs = [RunFolder.open(f.path).config() for f in result.folds]
    assert [c.train.time_budget for c in configs] == budgets
    # one configuration, K times: the folds' configs differ in their fold and budget only
    same = [replace(c, data=replace(c.data, fold=1), train=replace(c.train, time_budget=None))
            for c in configs]
    assert same[1] == same[0] and same[2] == same[0]
    assert fold_budget(70.0, 2, reserve=5.0) == 30.0


def test_a_budget_spent_before_the_last_fold_fails_and_leaves_nothing(tmp_path):
    clock = FakeClock()
    with pytest.raises(NeuroclassError, match="after 1 of 3 folds 0.0 s of the 90.0 s budget are left"):
        cross_validate(digits_config(tmp_path / "runs", "train.time_budget=90"), K,
                       callbacks=[Jump(clock, 95.0)], clock=clock)
    assert not (tmp_path / "runs").exists()


class FailSecondFold(Callback):
    def __init__(self) -> None:
        self.fits = 0

    def on_fit_start(self, state, model) -> None:
        self.fits += 1
        if self.fits == 2:
            raise RuntimeError("fold 2 fails")


def test_the_summary_folder_appears_only_complete(tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    (out / "other-run").mkdir()
    during = []

    def look(fold):
        during.append((fold.path.exists(), sorted(p.name for p in out.iterdir())))

    with pytest.raises(RuntimeError, match="fold 2 fails"):
        cross_validate(digits_config(out), K, callbacks=[FailSecondFold()], on_fold=look)
    assert during[0][0] is False  # fold 1 done: only the hidden partial summary folder exists
    assert len(during[0][1]) == 2 and during[0][1][0].startswith(".partial-digits-mlp-cv3-")
    assert sorted(p.name for p in out.iterdir()) == ["other-run"]  # fold 2 failed: nothing left


def test_a_stop_request_ends_the_cross_validation_and_leaves_nothing(tmp_path):
    stop = StopRequest()
    with pytest.raises(RunInterrupted):  # asked during fold 1: its training stops after a step
        cross_validate(digits_config(tmp_path / "runs"), K, stop=stop,
                       on_fold=lambda fold: pytest.fail("no fold should finish"),
                       callbacks=[AskToStop(stop)])
    assert not (tmp_path / "runs").exists()


class AskToStop(Callback):
    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop

    def on_fit_start(self, state, model) -> None:
        self.stop.request("interrupted (test)")


# ----------------------------------------------------------------------------- the command line

def test_cli_refuses_too_few_folds_and_resume(tmp_path, capsys):
    from neuroclass.cli import main

    for argv in (["train", "digits", "--cv", "1"], ["train", "digits", "--cv", "0"],
                 ["train", "--resume", str(tmp_path), "--cv", "3"]):
        assert main(argv + ["--out", str(tmp_path / "runs")] if argv[1] == "digits" else argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("neuroclass: error:") and "--cv" in err[0], err
    assert not (tmp_path / "runs").exists()


def test_cli_too_many_folds_is_one_line_and_exit_2(tmp_path, capsys):
    from neuroclass.cli import main

    rc = main(["train", "blocks:n=40,size=8", "--model", "mlp", "--cv", "30",
               "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "class '" in err[0] and "--cv 8" in err[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_cli_train_cv_prints_the_folds_and_the_summary(tmp_path, capsys):
    from neuroclass.cli import main

    rc = main(["train", "digits", "--model", "mlp", "--epochs", "1", "--cv", "3", "--quiet",
               "--out", str(tmp_path / "runs"), "--set", "model.options.hidden=[32]",
               "--set", "train.threads=1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0, lines
    assert [line.split(":")[0] for line in lines[:3]] == ["fold 1/3", "fold 2/3", "fold 3/3"]
    match = re.fullmatch(r"cv 3 folds: accuracy (0\.\d{3}) \+- 0\.\d{3}, macro F1 0\.\d{3} \+- 0\.\d{3}, "
                         r"log loss \d\.\d{3} \+- \d\.\d{3}; fold ensemble test accuracy (0\.\d{3}), "
                         r"macro F1 0\.\d{3}; summary folder: (.+)", lines[3])
    assert match, lines[3]
    summary = json.loads((tmp_path / "runs" / match.group(3).split("/")[-1] / "cv.json").read_text())
    assert f"{summary['metrics']['accuracy']['mean']:.3f}" == match.group(1)
    assert f"{summary['fold_ensemble_test_metrics']['accuracy']:.3f}" == match.group(2)
