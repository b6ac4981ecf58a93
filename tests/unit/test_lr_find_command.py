"""`neuroclass lr-find` on a table: it takes train's data options (--label-column, --seed,
--config, --set) and prints a `neuroclass train` command that repeats them and the model, and runs
as printed; a sweep whose loss is lowest at its last step suggests nothing and says why."""
from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd
import pytest

from neuroclass.cli import main
from neuroclass.lr_find import read_suggestion
from neuroclass.training.lr_range import LRCurve


@pytest.fixture
def table(tmp_path):
    """120 rows whose label column, "kind", is neither the last nor named "label"."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"kind": "", "a": rng.normal(size=120), "b": rng.normal(size=120)})
    frame["kind"] = np.where(frame["a"] + 0.5 * frame["b"] > 0, "up", "down")
    frame["note"] = rng.normal(size=120)
    frame.to_csv(tmp_path / "my rows.csv", index=False)
    return tmp_path / "my rows.csv"


def printed_command(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("use it: ")]
    return line[len("use it: "):]


def test_lr_find_takes_the_label_column_and_its_command_trains_as_printed(table, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["lr-find", table.name, "--label-column", "kind", "--model", "mlp", "--seed", "3",
                 "--set", "model.options.hidden=[16]", "--set", "train.epochs=1", "--out", "sweeps"])
    out = capsys.readouterr().out
    assert code == 0, out
    command = printed_command(out)
    argv = shlex.split(command)
    assert argv[:3] == ["neuroclass", "train", "my rows.csv"]
    for pair in (["--label-column", "kind"], ["--model", "mlp"], ["--seed", "3"],
                 ["--set", "model.options.hidden=[16]"]):
        assert command.find(shlex.join(pair)) > 0, command
    assert argv[-2] == "--set" and argv[-1].startswith("optim.lr=")
    capsys.readouterr()
    assert main(argv[1:] + ["--no-report", "--quiet"]) == 0  # the command as printed trains
    (run,) = (tmp_path / "runs").iterdir()
    model = json.loads((run / "model.json").read_text())
    assert model["classes"] == ["down", "up"]  # the label column lr-find was given
    assert "optim:\n" in (run / "config.yaml").read_text()


def test_a_loss_lowest_at_the_last_step_gives_no_suggestion_and_says_so(table, tmp_path, capsys):
    code = main(["lr-find", str(table), "--label-column", "kind", "--model", "mlp", "--steps", "5",
                 "--out", str(tmp_path / "sweeps")])
    out = capsys.readouterr().out
    assert code == 0
    folder = next((tmp_path / "sweeps").glob("lr-find-*"))
    record = json.loads((folder / "lr_find.json").read_text())
    smoothed = [float(line.split(",")[3]) for line in (folder / "lr_find.csv").read_text().splitlines()[1:]]
    assert int(np.argmin(smoothed)) == len(smoothed) - 1  # five steps up to lr 10: lowest at the last
    assert "no suggestion: the loss was still falling at the sweep's last step (lr 10)" in out
    assert "use it:" not in out and record["suggestion"] is None and "still falling" in record["no_suggestion"]


def test_read_suggestion_refuses_a_minimum_at_the_last_step():
    lrs = list(np.logspace(-5, 1, 30))
    falling = LRCurve(lrs, [], [2.0 - 0.05 * i for i in range(30)], False)
    suggestion, why = read_suggestion(falling)
    assert suggestion is None and "still falling" in why and "lr 10" in why
    valley = LRCurve(lrs, [], [2.0 - 0.05 * i for i in range(20)] + [1.5 + 0.1 * i for i in range(10)], False)
    suggestion, why = read_suggestion(valley)
    assert why is None and suggestion.lr == pytest.approx(lrs[19] / 10)
    flat = LRCurve(lrs, [], [2.0] * 30, False)
    assert read_suggestion(flat) == (None, "the loss did not fall over 30 steps")
