"""A glass-box run in the pipeline as a torch run is: Ctrl-C through the CLI's signal handlers ends
it after the current update with the same exit code (its weights so far kept as a finished run,
since it cannot resume mid-training, and the line says so), the callbacks get the Trainer's hooks
(the progress lines on the command line), and a time budget brings early stopping."""
import itertools
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from neuroclass.api import build_config, load_run
from neuroclass.cli import main
from neuroclass.errors import RunInterrupted
from neuroclass.interrupts import stop_on_signals
from neuroclass.pipeline import train
from neuroclass.runs import RunFolder
from neuroclass.training.callbacks import Callback
from neuroclass.training.glassbox_settings import BUDGET_PATIENCE

QUICK = ["train.threads=1"]


def glassbox(tmp_path, *overrides, **named):
    return build_config("digits", "glassbox", overrides=[*QUICK, *overrides], out=tmp_path / "runs", quiet=True,
                        **named)


class SignalAt(Callback):
    """Sends the process SIGINT, as Ctrl-C does, once the fit has done ``step`` updates."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, state, model):
        if state.step == self.step:
            signal.raise_signal(signal.SIGINT)


class Hooks(Callback):
    """Records the hooks called, in order, with the state's epoch and step."""

    def __init__(self) -> None:
        self.calls = []

    def on_fit_start(self, state, model):
        self.calls.append(("fit_start", state.epoch, state.step))

    def on_epoch_start(self, state, model):
        self.calls.append(("epoch_start", state.epoch, state.step))

    def on_batch_end(self, state, model):
        self.calls.append(("batch_end", state.epoch, state.step))

    def on_epoch_end(self, state, model):
        assert state.history[-1]["epoch"] == state.epoch  # the epoch's row is there
        self.calls.append(("epoch_end", state.epoch, state.step))

    def on_fit_end(self, state, model):
        self.calls.append(("fit_end", state.epoch, state.step))


def test_ctrl_c_through_the_cli_finishes_the_run_with_its_weights_and_exits_130(tmp_path, capfd):
    out = tmp_path / "runs"

    def ctrl_c_once_training() -> None:
        end = time.monotonic() + 120
        while not list(out.glob(".partial-*/config.yaml")) and time.monotonic() < end:
            time.sleep(0.005)
        time.sleep(0.3)  # into the training (a signal before it stops the run at its first update)
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=ctrl_c_once_training, daemon=True)
    sender.start()
    # a budget many times the run's startup and no early stopping: the signal ends this run, not the budget
    code = main(["train", "digits", "--model", "glassbox", "--time-budget", "30s", "--set", "train.patience=0",
                 "--set", "train.threads=1", "--out", str(out), "--no-report"])
    sender.join()
    err = capfd.readouterr().err.splitlines()
    assert code == 130, err
    assert [line for line in err if line.startswith("neuroclass: SIGINT received: ")]
    (line,) = [line for line in err if "cannot resume" in line]
    found = re.fullmatch(r"neuroclass: interrupted by SIGINT at epoch \d+, step \d+; a glassbox run cannot resume "
                         r"mid-training, so it was finished with its weights at that step; the run had finished: "
                         r"(\S+) \(to write its report: neuroclass report \S+\)", line)
    assert found, line
    run = Path(found[1])
    assert run.parent == out and not list(out.glob(".partial-*"))
    assert RunFolder.open(run).timing()["stop_reason"] == "interrupted"
    assert load_run(run).model.network.options.lr == 1e-3 and (run / "metrics.json").is_file()


def test_a_stop_request_keeps_the_best_epochs_weights_and_names_them(tmp_path):
    cfg = glassbox(tmp_path, "train.patience=3", epochs=30)
    with stop_on_signals() as interrupts:
        with pytest.raises(RunInterrupted) as caught:
            train(cfg, callbacks=[interrupts.phase, SignalAt(25)], report=False, stop=interrupts.stop)
    assert interrupts.exit_code() == 130 and caught.value.finished
    # asked after update 25 by a callback after the stop request's: seen at the end of update 26
    assert re.match(r"interrupted by SIGINT at epoch \d+, step 26; a glassbox run cannot resume mid-training, "
                    r"so it was finished with the weights of epoch (\d+) \(the lowest validation loss\)$",
                    caught.value.detail), caught.value.detail
    folder = RunFolder.open(caught.value.path)
    timing, history = folder.timing(), folder.history()
    val_losses = [float(row["val_loss"]) for row in history]
    assert timing["stop_reason"] == "interrupted" and timing["best_epoch"] == 1 + val_losses.index(min(val_losses))
    assert f"the weights of epoch {timing['best_epoch']} " in caught.value.detail


def test_the_callbacks_get_the_trainers_hooks_and_the_cli_prints_each_epoch(tmp_path, capfd):
    hooks = Hooks()
    train(glassbox(tmp_path, epochs=2), callbacks=[hooks], report=False)
    steps = hooks.calls[-1][2]
    per_epoch = steps // 2
    assert hooks.calls[:3] == [("fit_start", 0, 0), ("epoch_start", 0, 0), ("batch_end", 0, 1)]
    assert [c for c in hooks.calls if c[0] != "batch_end"] == [
        ("fit_start", 0, 0), ("epoch_start", 0, 0), ("epoch_end", 1, per_epoch), ("epoch_start", 1, per_epoch),
        ("epoch_end", 2, steps), ("fit_end", 2, steps)]
    assert [c[2] for c in hooks.calls if c[0] == "batch_end"] == list(range(1, steps + 1))
    capfd.readouterr()
    assert main(["train", "digits", "--model", "glassbox", "--epochs", "3", "--set", "train.threads=1",
                 "--out", str(tmp_path / "cli"), "--no-report"]) == 0
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2", "epoch 3"]
    assert all(re.search(r"loss \d\.\d{4} acc \d\.\d{4} \| val_loss \d\.\d{4} val_acc \d\.\d{4}", line) for line in lines)


def test_a_time_budget_without_epochs_stops_early_and_records_the_patience(tmp_path):
    # a fake clock, 10 us a reading: early stopping comes after about 1,500 updates, some 6,000 readings
    ticks = itertools.count(0.0, 1e-5)
    result = train(glassbox(tmp_path, time_budget="1s"), report=False, clock=lambda: next(ticks))
    folder = RunFolder.open(result.path)
    assert folder.config().train.patience == BUDGET_PATIENCE
    timing = folder.timing()
    assert timing["stop_reason"] == "early_stopping"
    assert timing["epochs"] - timing["best_epoch"] == BUDGET_PATIENCE
    assert f"no validation loss improvement in {BUDGET_PATIENCE} epochs" in timing["stop_detail"]


def test_the_run_folder_records_the_settings_that_trained(tmp_path):
    result = train(glassbox(tmp_path, "model.options.preset=classic", "optim.lr=0.004", epochs=1), report=False)
    folder = RunFolder.open(result.path)
    cfg, options = folder.config(), json.loads((result.path / "model.json").read_text())["options"]
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.train.batch_size) == ("sgd", 0.004, 0.0, 1)
    assert (options["optimizer"], options["lr"], options["batch_size"]) == ("sgd", 0.004, 1)
    assert (cfg.optim.schedule, cfg.train.label_smoothing, cfg.train.ema) == ("constant", 0.0, 0.0)
