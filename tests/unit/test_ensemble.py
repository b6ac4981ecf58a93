"""Ensembles of runs: `neuroclass ensemble` (mean, vote, stacking), the ensemble folder, and
predict / evaluate / report / api.load_run taking it like a run."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from neuroclass import api
from neuroclass.cli import main
from neuroclass.errors import NeuroclassError
from neuroclass.inference import EnsemblePredictor, Predictor, load_predictor
from neuroclass.inference.ensemble import mean_probabilities, vote_probabilities
from neuroclass.inference.stacking import fit_stacker, stacked_probabilities, stacker_from_record, stacker_record
from neuroclass.runs import OutOfFold, RunFolder, read_ensemble, read_oof, write_oof
from neuroclass.tuning.ensemble import build_ensemble


def tiny_run(out, hidden, seed=0, data="digits"):
    """An mlp trained for one epoch: a finished run folder in a second or two."""
    return api.train(data, model="mlp", epochs=1, seed=seed, out=out, quiet=True, report=False,
                     overrides=[f"model.options.hidden=[{hidden}]", "train.batch_size=64"]).path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs on digits sharing data and split (a, b), one with another split (seed 1), one on
    other data (blocks), and the test split's inputs and labels."""
    out = tmp_path_factory.mktemp("ensemble-runs")
    paths = {"a": tiny_run(out, 32), "b": tiny_run(out, 16), "seed1": tiny_run(out, 16, seed=1),
             "blocks": tiny_run(out, 16, data="blocks:n=120,size=8")}
    data = RunFolder.open(paths["a"]).load_data()
    return {**paths, "out": out, "data": data, "test": data.part("test")}


@pytest.fixture(scope="module")
def pngs(runs, tmp_path_factory):
    """Five digits of the test split as PNG files."""
    folder = tmp_path_factory.mktemp("pngs")
    paths = []
    for i, image in enumerate(runs["test"].x[:5].numpy()):
        Image.fromarray(image[0]).save(folder / f"digit{i}.png")
        paths.append(str(folder / f"digit{i}.png"))
    return paths


def proba_of(run, x):
    return load_predictor(run).predict_proba_tensor(x)


def predicted(capsys, run, files):
    """`neuroclass predict --json`'s probabilities per file: {file: {class: p}}."""
    capsys.readouterr()
    assert main(["predict", str(run), *files, "--json", "--top-k", "10"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return {d["source"]: {t["label"]: t["probability"] for t in d["top"]} for d in lines}


def one_error_line(capsys, argv, *words):
    """Run the CLI, expecting exit 2 and one "neuroclass: error:" line holding ``words``."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroclass: error: "), err
    for word in words:
        assert word in err[0], err[0]


def cv_folder(members, out, data):
    """A cross-validation summary folder as `train --cv` leaves it: an ensemble (mean) of the fold
    runs ``members`` plus oof.npz over the training pool, fold k's rows scored by member k."""
    path = build_ensemble(members, "mean", out=out)
    pool = np.setdiff1d(np.arange(len(data.dataset)), data.indices["test"])
    fold = 1 + np.arange(len(pool)) % len(members)
    proba = np.zeros((len(pool), len(data.dataset.classes)), np.float32)
    for k, member in enumerate(members, start=1):
        proba[fold == k] = proba_of(member, data.dataset.x[pool[fold == k]])
    write_oof(path, OutOfFold(pool, fold, data.dataset.y.numpy()[pool], proba))
    return path


# ---------------------------------------------------------------------------------------- mean
def test_mean_of_one_run_predicts_exactly_as_the_run(runs, pngs, tmp_path, capsys):
    assert main(["ensemble", str(runs["a"]), "--out", str(tmp_path), "--no-report"]) == 0
    (ens,) = tmp_path.iterdir()
    assert not ens.name.startswith(".")  # renamed into place
    alone, together = predicted(capsys, runs["a"], pngs), predicted(capsys, ens, pngs)
    for f in pngs:
        assert together[f].keys() == alone[f].keys()
        assert np.allclose([together[f][c] for c in alone[f]], list(alone[f].values()), atol=1e-6)
    assert json.loads((ens / "metrics.json").read_text())["accuracy"] == pytest.approx(
        RunFolder.open(runs["a"]).metrics()["accuracy"])


def test_mean_of_two_runs_is_the_mean_of_their_probabilities(runs, tmp_path):
    x = runs["test"].x
    pa, pb = proba_of(runs["a"], x), proba_of(runs["b"], x)
    even = build_ensemble([runs["a"], runs["b"]], out=tmp_path)
    assert np.allclose(proba_of(even, x), (pa + pb) / 2, atol=1e-6)
    weighted = build_ensemble([runs["a"], runs["b"]], weights=[3, 1])  # default: beside the first member
    assert weighted.parent == runs["a"].parent
    assert np.allclose(proba_of(weighted, x), (3 * pa + pb) / 4, atol=1e-6)
    record = read_ensemble(weighted)
    assert [m.weight for m in record.members] == [3.0, 1.0]
    # members beside the ensemble are named relative to it, others by absolute path; nothing copied
    raw = json.loads((weighted / "ensemble.json").read_text())
    assert [m["path"] for m in raw["members"]] == [f"../{runs['a'].name}", f"../{runs['b'].name}"]
    assert raw["method"] == "mean" and not any(m["copied"] for m in raw["members"])
    far = json.loads((even / "ensemble.json").read_text())["members"]
    assert [m["path"] for m in far] == [str(runs["a"].absolute()), str(runs["b"].absolute())]
    # the test metrics are those of the ensemble's probabilities on the shared test split
    accuracy = float(((pa + pb).argmax(1) == runs["test"].y.numpy()).mean())
    assert RunFolder.open(even).metrics()["accuracy"] == pytest.approx(accuracy)
    assert isinstance(api.load_run(even), EnsemblePredictor)


# ---------------------------------------------------------------------------------------- vote
def test_vote_counts_weighted_votes_and_breaks_ties_by_the_mean():
    proba = np.array([[[0.6, 0.4, 0.0]], [[0.1, 0.9, 0.0]], [[0.2, 0.3, 0.5]]])
    shares = vote_probabilities(proba, [1, 1, 2])
    assert shares[0].round(4).tolist() == [0.25, 0.25, 0.5]  # the weight-2 member wins alone
    tied = vote_probabilities(proba[:2], [1, 1])
    assert tied.argmax(1).tolist() == [1] and np.isclose(tied.sum(), 1)  # 0.5 each; mean 0.35 vs 0.65
    assert mean_probabilities(proba[:2], [1, 0]).tolist() == [[pytest.approx(0.6), pytest.approx(0.4), 0.0]]


def test_vote_ensemble_of_runs(runs, tmp_path):
    x = runs["test"].x
    pa, pb = proba_of(runs["a"], x), proba_of(runs["b"], x)
    ens = build_ensemble([runs["a"], runs["b"]], method="vote", weights=[2, 1], out=tmp_path)
    got = proba_of(ens, x)
    assert np.array_equal(got.argmax(1), pa.argmax(1))  # the heavier member outvotes the other
    assert np.allclose(got, vote_probabilities(np.stack([pa, pb]), [2, 1]))
    top = got.max(1)  # 2/3 where they disagree, all of the vote where they agree
    assert np.all(np.isclose(top, 2 / 3, atol=1e-4) | np.isclose(top, 1.0, atol=1e-4))
    assert np.isclose(top, 2 / 3, atol=1e-4).any() == (pa.argmax(1) != pb.argmax(1)).any()


# ---------------------------------------------------------------------------------------- stacking
def test_stacking_fits_on_out_of_fold_rows_only(runs, tmp_path, capsys, pngs):
    cv1 = cv_folder([runs["a"], runs["b"]], tmp_path / "cv", runs["data"])
    cv2 = cv_folder([runs["b"], runs["a"]], tmp_path / "cv", runs["data"])
    assert main(["ensemble", str(cv1), str(cv2), "--method", "stacking", "--out", str(tmp_path / "st"),
                 "--no-report"]) == 0
    (ens,) = (tmp_path / "st").iterdir()
    saved = json.loads((ens / "stacker.json").read_text())  # JSON, never a pickle
    oof1, oof2 = read_oof(cv1), read_oof(cv2)
    test_index = runs["data"].indices["test"]
    # by construction the stacker's rows are the out-of-fold rows, none of them a test example ...
    assert saved["fitted_on"]["rows"] == len(oof1.index) and np.intersect1d(oof1.index, test_index).size == 0
    # ... and it is exactly the fit on those rows alone
    refit = fit_stacker(np.stack([oof1.proba, oof2.proba]), oof1.label)
    assert np.allclose(saved["coef_"], refit.coef_) and np.allclose(saved["intercept_"], refit.intercept_)
    x = runs["test"].x
    member_proba = np.stack([proba_of(cv1, x), proba_of(cv2, x)])  # each CV folder: its folds' mean
    expected = stacker_from_record(saved).predict_proba(member_proba.transpose(1, 0, 2).reshape(len(x), -1))
    assert np.allclose(proba_of(ens, x), expected, atol=1e-6)
    assert len(predicted(capsys, ens, pngs)) == len(pngs)


def test_stacking_refuses_members_without_matching_oof(runs, tmp_path, capsys):
    cv1 = cv_folder([runs["a"], runs["b"]], tmp_path / "cv", runs["data"])
    one_error_line(capsys, ["ensemble", str(cv1), str(runs["a"]), "--method", "stacking", "--out",
                            str(tmp_path / "x")], str(runs["a"]), "oof.npz", "train --cv")
    other = cv_folder([runs["b"], runs["a"]], tmp_path / "cv", runs["data"])
    oof = read_oof(other)
    write_oof(other, OutOfFold(oof.index[1:], oof.fold[1:], oof.label[1:], oof.proba[1:]))
    one_error_line(capsys, ["ensemble", str(cv1), str(other), "--method", "stacking", "--out",
                            str(tmp_path / "x")], "cover different examples")
    test_row = runs["data"].indices["test"][:1]
    write_oof(other, OutOfFold(np.concatenate([oof.index, test_row]), np.append(oof.fold, 1),
                               np.append(oof.label, 0), np.concatenate([oof.proba, oof.proba[:1]])))
    one_error_line(capsys, ["ensemble", str(other), "--method", "stacking", "--out", str(tmp_path / "x")],
                   "1 example of the test split")
    one_error_line(capsys, ["ensemble", str(cv1), "--method", "stacking", "--weights", "1",
                            "--out", str(tmp_path / "x")], "--weights")
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("case", ["classes", "split", "not-a-run", "weights-count", "weights-negative",
                                  "weights-text", "unfinished"])
def test_bad_input_is_one_error_line_and_writes_nothing(runs, tmp_path, capsys, case):
    a, b = str(runs["a"]), str(runs["b"])
    out = ["--out", str(tmp_path / "out")]
    partial = tmp_path / ".partial-digits-mlp"
    argv, words = {
        "classes": ([a, str(runs["blocks"])], ["ensemble members differ", "classes", "same data"]),
        "split": ([a, str(runs["seed1"])], ["ensemble members differ", "test split", "another seed"]),
        "not-a-run": ([a, str(tmp_path)], [str(tmp_path), "no model.json"]),
        "weights-count": ([a, b, "--weights", "1,2,3"], ["--weights has 3 numbers for 2 members"]),
        "weights-negative": ([a, b, "--weights", "1,-1"], ["--weights must be finite and >= 0", "-1"]),
        "weights-text": ([a, b, "--weights", "1,x"], ["--weights '1,x'"]),
        "unfinished": ([a, str(partial)], ["unfinished run", "--resume"]),
    }[case]
    if case == "unfinished":
        shutil.copytree(runs["b"], partial)
    one_error_line(capsys, ["ensemble", *argv, *out], *words)
    assert not (tmp_path / "out").exists()


def test_unknown_method_and_no_member_are_refused_by_the_parser(runs, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ensemble", str(runs["a"]), "--method", "median"])
    assert exc.value.code == 2 and "invalid choice: 'median'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["ensemble"])
    assert exc.value.code == 2
    with pytest.raises(NeuroclassError, match="at least one member"):
        build_ensemble([])


# ---------------------------------------------------------------------------------------- commands
def test_evaluate_report_and_embed_on_an_ensemble(runs, tmp_path, capsys):
    ens = build_ensemble([runs["a"], runs["b"]], out=tmp_path)
    capsys.readouterr()
    assert main(["evaluate", str(ens), "--json", "--no-report"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["accuracy"] == pytest.approx(RunFolder.open(ens).metrics()["accuracy"])
    assert printed["n"] == len(runs["test"])
    assert main(["report", str(ens)]) == 0
    html = (ens / "report.html").read_text()
    assert runs["a"].name in html and runs["b"].name in html and "Members" in html
    report = json.loads((ens / "report.json").read_text())
    assert report["report"]["ensemble"] and "training" not in report  # no one model's training
    rows = report["members"]["members"]
    assert [r["accuracy"] for r in rows] == [pytest.approx(RunFolder.open(runs[k]).metrics()["accuracy"])
                                            for k in ("a", "b")]
    assert report["metrics"]["accuracy"] == pytest.approx(printed["accuracy"])
    one_error_line(capsys, ["embed", str(ens), "--out", str(tmp_path / "f.npz")], "ensemble", "members")
    with pytest.raises(NeuroclassError, match="an ensemble of runs, not one model"):
        Predictor.from_run(ens)


def test_copied_members_travel_with_the_ensemble(runs, tmp_path, pngs, capsys):
    source = tmp_path / "src"
    members = [shutil.copytree(runs[k], source / runs[k].name) for k in ("a", "b")]
    assert main(["ensemble", *map(str, members), "--copy", "--out", str(tmp_path / "ens")]) == 0
    assert "report: " in capsys.readouterr().out
    (ens,) = (tmp_path / "ens").iterdir()
    moved = shutil.move(str(ens), tmp_path / "moved")  # the folder alone, members inside it
    shutil.rmtree(source)
    raw = json.loads((tmp_path / "moved" / "ensemble.json").read_text())
    assert [m["path"] for m in raw["members"]] == [f"members/{m.name}" for m in members]
    assert all(m["copied"] for m in raw["members"])
    assert len(predicted(capsys, moved, pngs)) == len(pngs)


def test_a_missing_member_or_a_damaged_ensemble_json_is_one_error_line(runs, tmp_path, pngs, capsys):
    member = shutil.copytree(runs["a"], tmp_path / "member")
    ens = build_ensemble([member, runs["b"]], out=tmp_path / "ens")
    shutil.rmtree(member)
    one_error_line(capsys, ["predict", str(ens), *pngs], str(member), "is missing", "--copy")
    (ens / "ensemble.json").write_text(json.dumps({"format": 1, "method": "mean"}))
    one_error_line(capsys, ["evaluate", str(ens)], "ensemble.json", "damaged", "build the ensemble again")
    with pytest.raises(NeuroclassError, match="at least one weight must be > 0"):
        build_ensemble([runs["a"], runs["b"]], weights=[0, 0], out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_the_stacker_round_trips_through_json_with_a_class_the_folds_never_saw():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=60)  # classes 0..2 of 4: class 3 is never a label
    member_proba = rng.dirichlet(np.ones(4), size=(2, 60)) * 0.3
    member_proba[:, np.arange(60), labels] += 0.7
    stacker = fit_stacker(member_proba, labels)
    record = json.loads(json.dumps(stacker_record(stacker, {"rows": 60})))  # plain JSON
    again = stacker_from_record(record)
    got = stacked_probabilities(again, member_proba, n_classes=4)
    assert got.shape == (60, 4) and np.allclose(got[:, 3], 0) and np.allclose(got.sum(1), 1, atol=1e-6)
    assert np.allclose(got[:, :3], stacker.predict_proba(member_proba.transpose(1, 0, 2).reshape(60, 8)))
    assert (got.argmax(1) == labels).mean() > 0.9
    with pytest.raises(NeuroclassError, match="fitted on 8 inputs, the members give 4"):
        stacked_probabilities(again, member_proba[:1], n_classes=4)
