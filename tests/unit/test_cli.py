"""The CLI end to end on tiny synthetic data: train, evaluate, predict, list, replay."""
import csv
import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from neuroclass.cli import main
from neuroclass.console import log_lines as _log_lines
from neuroclass.data.blocks import make_blocks

QUICK = ["--epochs", "3", "--quiet", "--set", "train.batch_size=32", "--model", "mlp",
         "--set", "model.options.hidden=[32]"]


def run_folder(out):
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1 and not folders[0].name.startswith(".")
    return folders[0]


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "blocks:n=240", "--out", str(out), *QUICK]) == 0
    printed = capsys.readouterr().out
    run = run_folder(out)
    assert "test accuracy" in printed and str(run) in printed
    for name in ["config.yaml", "metrics.csv", "metrics.json", "model.safetensors", "model.json",
                 "environment.json", "split.json", "split.npz", "timing.json"]:
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 48 and 0 <= metrics["accuracy"] <= 1
    meta = json.loads((run / "model.json").read_text())
    assert meta["family"] == "mlp" and meta["classes"] == ["red", "green", "blue", "yellow"]
    assert meta["input_shape"] == [3, 16, 16]
    env = json.loads((run / "environment.json").read_text())
    assert len(env["data_hash"]) == 64 and env["seed"] == 0
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 4  # header + 3 epochs
    assert not any(p.suffix == ".pkl" for p in run.iterdir())
    # every selection metric of tune --metric is in the per-epoch history, as trained
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    for row in rows:
        assert 0 <= float(row["val_balanced_accuracy"]) <= 1 and 0 <= float(row["val_macro_f1"]) <= 1


def test_same_seed_reproduces_metrics_exactly_and_config_replays(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["train", "blocks:n=240", "--out", str(a), "--seed", "5", *QUICK]) == 0
    assert main(["train", "blocks:n=240", "--out", str(b), "--seed", "5", *QUICK]) == 0
    first = (run_folder(a) / "metrics.json").read_bytes()
    assert first == (run_folder(b) / "metrics.json").read_bytes()
    assert main(["train", "blocks:n=240", "--config", str(run_folder(a) / "config.yaml"),
                 "--out", str(c)]) == 0
    assert (run_folder(c) / "metrics.json").read_bytes() == first


def test_evaluate_matches_the_recorded_test_metrics(trained_run, capsys):
    assert main(["evaluate", str(trained_run.path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == pytest.approx(trained_run.metrics["accuracy"])
    assert result["n"] == trained_run.metrics["n"]


def test_evaluate_on_other_data(trained_run, capsys):
    assert main(["evaluate", str(trained_run.path), "--data", "blocks:n=200,seed=9"]) == 0
    text = capsys.readouterr().out
    assert "blocks:n=200,seed=9 (all, 200 examples)" in text and "accuracy" in text


def test_predict_png_returns_its_label(trained_run, tmp_path, capsys):
    ds = make_blocks(n=20, seed=42)
    paths = []
    for i in range(4):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(ds.x[i].numpy().transpose(1, 2, 0)).save(path)
        paths.append(str(path))
    big = tmp_path / "big.jpg"  # another size and format: resized to the model's input
    Image.fromarray(ds.x[0].numpy().transpose(1, 2, 0)).resize((64, 64)).save(big, quality=95)
    assert main(["predict", str(trained_run.path), *paths, str(big), "--json", "--top-k", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows[:4]] == [ds.classes[int(ds.y[i])] for i in range(4)]
    assert rows[4]["label"] == ds.classes[int(ds.y[0])]
    assert all(len(r["top"]) == 2 and 0 < r["probability"] <= 1 for r in rows)
    assert main(["predict", str(trained_run.path), paths[0]]) == 0
    assert "top-k" in capsys.readouterr().out


def test_table_train_and_predict_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                       "colour": rng.choice(["red", "blue"], size=n)})
    df["label"] = np.where(df["a"] + (df["colour"] == "red") * 2 > 1, "yes", "no")
    csv = tmp_path / "table.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "runs"
    assert main(["train", str(csv), "--label-column", "label", "--set", "data.categorical=[colour]",
                 "--out", str(out), "--quiet", "--model", "mlp", "--epochs", "15",
                 "--set", "train.batch_size=32"]) == 0
    run = run_folder(out)
    assert json.loads((run / "metrics.json").read_text())["accuracy"] > 0.85
    new = tmp_path / "new.csv"
    df.drop(columns=["label"]).head(5).to_csv(new, index=False)
    capsys.readouterr()
    assert main(["predict", str(run), str(new), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 5 and {r["label"] for r in rows} <= {"yes", "no"}
    assert main(["evaluate", str(run), "--data", str(csv)]) == 0


def test_npz_and_image_folder_sources(tmp_path):
    ds = make_blocks(n=200, size=12, seed=1)
    np.savez(tmp_path / "data.npz", x=ds.x.numpy().transpose(0, 2, 3, 1), y=ds.y.numpy())
    assert main(["train", str(tmp_path / "data.npz"), "--out", str(tmp_path / "r1"), *QUICK]) == 0
    root = tmp_path / "folder"
    for i in range(len(ds)):
        split = "test" if i % 5 == 0 else "train"
        folder = root / split / ds.classes[int(ds.y[i])]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(ds.x[i].numpy().transpose(1, 2, 0)).save(folder / f"{i}.png")
    assert main(["train", str(root), "--out", str(tmp_path / "r2"), *QUICK]) == 0
    run = run_folder(tmp_path / "r2")
    assert json.loads((run / "split.json").read_text())["test"] == "shipped"
    assert json.loads((run / "metrics.json").read_text())["n"] == 40


def test_listing_commands(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in ("mlp", "cnn", "resnet"))
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in ("fashion-mnist", "mnist", "digits", "blocks"))


def test_help_for_every_subcommand(capsys):
    for command in (["train"], ["evaluate"], ["predict"], ["bench"], ["datasets"], ["models"],
                    ["data", "get"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        assert info.value.code == 0
        assert "usage: neuroclass" in capsys.readouterr().out


def test_a_budgeted_run_stops_by_the_budget_and_prints_its_choices(tmp_path, capsys):
    # the timing itself (in time, the rate annealed) is the Trainer's, tested with a fake clock
    # (test_training.py); here: the stop reason's record and what the CLI prints
    out = tmp_path / "runs"
    assert main(["train", "blocks:n=4000,size=16", "--out", str(out), "--model", "cnn", "--no-report",
                 "--time-budget", "4s", "--set", "model.options.channels=[8]"]) == 0
    captured = capsys.readouterr()
    timing = json.loads((run_folder(out) / "timing.json").read_text())
    assert timing["stop_reason"] == "time_budget" and timing["stop_detail"].startswith("time budget reached")
    assert f"stopped: {timing['stop_detail']}" in captured.out
    assert "for the time budget" in captured.out.splitlines()[0]  # the budget's size choice, a log record
    assert "epoch 1: loss" in captured.err  # the progress callback the CLI installs


def test_version(capsys):
    from neuroclass import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"neuroclass {__version__}\n"


def logging_and_warnings() -> tuple:
    logger = logging.getLogger("neuroclass")
    return (logger.level, logger.propagate, list(logger.handlers), warnings.showwarning, list(warnings.filters))


def test_library_log_records_print_as_lines_on_stdout_and_warnings_on_stderr(capsys):
    before = logging_and_warnings()
    with _log_lines(quiet=False):
        logging.getLogger("neuroclass.training.budget").info("model size s for the time budget")
        logging.getLogger("neuroclass.data").debug("not shown")
        warnings.warn("data changed since the run was trained", stacklevel=1)
    captured = capsys.readouterr()
    assert captured.out == "model size s for the time budget\n"
    assert captured.err == "neuroclass: warning: data changed since the run was trained\n"
    assert logging_and_warnings() == before


def test_quiet_prints_no_info_records(capsys):
    with _log_lines(quiet=True):
        logging.getLogger("neuroclass.training.budget").info("model size s for the time budget")
        logging.getLogger("neuroclass.training.budget").warning("a warning record still shows")
    assert capsys.readouterr().out == "a warning record still shows\n"


def test_main_leaves_logging_and_warnings_as_it_found_them(capsys):
    before = logging_and_warnings()
    assert main(["models"]) == 0
    assert logging_and_warnings() == before


def test_python_dash_m_runs_the_same_command_line():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "neuroclass", "models"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cnn" in done.stdout and "mlp" in done.stdout
