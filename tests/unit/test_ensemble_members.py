"""Ensemble members: referred to by relative path anywhere under the ensemble folder's parent (a
study folder's trials/), so the tree can move; old files with absolute paths still load; the same
run given twice is refused; one run makes an ensemble that says it equals its member."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from neuroclass import api
from neuroclass.cli import main
from neuroclass.errors import NeuroclassError
from neuroclass.inference import load_predictor
from neuroclass.runs import RunFolder, read_ensemble
from neuroclass.runs.ensemble_file import member_reference
from neuroclass.tuning.ensemble import build_ensemble


def tiny_run(out, hidden):
    """An mlp trained for one epoch on digits: a finished run folder in a second or two."""
    return api.train("digits", model="mlp", epochs=1, seed=0, out=out, quiet=True, report=False,
                     overrides=[f"model.options.hidden=[{hidden}]", "train.batch_size=64"]).path


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study-like tree: study/trials/<two runs> and study/ensemble-top2 built of them."""
    root = tmp_path_factory.mktemp("members") / "study"
    trials = [tiny_run(root / "trials", 32), tiny_run(root / "trials", 16)]
    ensemble = build_ensemble(trials, "mean", out=root, name="ensemble-top2")
    return root, trials, ensemble


def test_members_in_the_study_tree_are_stored_relative_and_the_tree_can_move(study, tmp_path):
    root, trials, ensemble = study
    raw = json.loads((ensemble / "ensemble.json").read_text())
    assert [m["path"] for m in raw["members"]] == [f"../trials/{t.name}" for t in trials]
    moved = shutil.copytree(root, tmp_path / "elsewhere" / "study", symlinks=True) / ensemble.name
    record = read_ensemble(moved)
    assert [m.path.parent for m in record.members] == [moved.parent / "trials"] * 2
    x = RunFolder.open(trials[0]).load_data().part("test").x[:8]
    assert np.allclose(load_predictor(moved).predict_proba_tensor(x), load_predictor(ensemble).predict_proba_tensor(x))


def test_an_ensemble_json_with_absolute_member_paths_still_loads(study, tmp_path):
    _, trials, ensemble = study
    copy = shutil.copytree(ensemble, tmp_path / "old-ensemble")
    raw = json.loads((copy / "ensemble.json").read_text())
    for member, trial in zip(raw["members"], trials):
        member["path"] = str(trial.resolve())
    (copy / "ensemble.json").write_text(json.dumps(raw))
    assert [m.path for m in read_ensemble(copy).members] == [t.resolve() for t in trials]


def test_member_reference_outside_the_tree_stays_absolute():
    assert member_reference(Path("/data/runs/a"), Path("/other/ens")) == "/data/runs/a"
    assert member_reference(Path("/a"), Path("/ens")) == "/a"  # the filesystem root is no shared tree
    assert member_reference(Path("/r/s/trials/t1"), Path("/r/s/ens")) == "../trials/t1"


def test_the_same_run_twice_is_refused_with_one_line_naming_it(study, tmp_path, capsys):
    _, trials, _ = study
    with pytest.raises(NeuroclassError, match=f"RUN '{trials[0]}' is given twice.*--weights"):
        build_ensemble([trials[0], trials[1], trials[0]], out=tmp_path / "never")
    link = tmp_path / "link"
    link.symlink_to(trials[1], target_is_directory=True)
    capsys.readouterr()
    assert main(["ensemble", str(trials[1]), str(link), "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"RUN '{link}' is given twice (also as '{trials[1]}')" in err[0], err
    assert not (tmp_path / "never").exists()


def test_one_run_is_an_ensemble_that_says_it_equals_its_member(study, tmp_path, capsys):
    _, trials, _ = study
    capsys.readouterr()
    assert main(["ensemble", str(trials[0]), "--method", "mean", "--out", str(tmp_path), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "one member: the ensemble equals its member" in out
    (ens,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    x = RunFolder.open(trials[0]).load_data().part("test").x[:8]
    assert np.allclose(load_predictor(ens).predict_proba_tensor(x), load_predictor(trials[0]).predict_proba_tensor(x),
                       atol=1e-6)
