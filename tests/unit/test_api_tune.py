"""neuroclass.tune: the search of `neuroclass tune` from Python, with the same study folder."""
from __future__ import annotations

import json

import pytest

import neuroclass
from neuroclass.errors import NeuroclassError
from neuroclass.runs import RunFolder


def test_tune_from_python_leaves_the_study_folder_of_the_cli(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: [0.003, 0.03]\n")
    result = neuroclass.tune("digits", model="mlp", sampler="grid", space=space, epochs=2, pruner="none",
                             overrides=["model.options.hidden=[16]", "train.tta=none"], out=tmp_path / "runs")
    rows = json.loads((result.folder / "leaderboard.json").read_text())["rows"]
    assert sorted(r["params"]["optim.lr"] for r in rows) == [0.003, 0.03]
    assert result.best == (result.folder / "best").resolve()
    assert RunFolder.open(result.best).config().optim.lr == rows[0]["params"]["optim.lr"]
    assert neuroclass.load_run(result.folder / "best").classes == [str(i) for i in range(10)]
    assert "neuroclass.tune('digits')" in (result.folder / "tune.json").read_text()


def test_tune_from_python_refuses_bad_options_before_any_trial(tmp_path):
    with pytest.raises(NeuroclassError, match="--sampler must be one of grid, random, tpe"):
        neuroclass.tune("digits", model="mlp", trials=2, sampler="anneal", out=tmp_path / "runs")
    with pytest.raises(NeuroclassError, match="tune needs data"):
        neuroclass.tune()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
