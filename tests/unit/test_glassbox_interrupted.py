"""A stop request during a glassbox trial or cross-validation fold does what it does for a torch
one: the trial or fold leaves no folder, the stop is said without a finished run, and a resumed
search trains the trial again. The signal's first line says that a glassbox run keeps no
checkpoint. Digits (a few hundred images), two epochs."""
import os
import re
import signal
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from neuroclass.api import build_config
from neuroclass.cli import main
from neuroclass.errors import RunInterrupted
from neuroclass.glassbox import Network, glassbox_options
from neuroclass.interrupts import stop_on_signals
from neuroclass.runs.glassbox_module import GlassboxModule
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.tuning.cv import cross_validate
from neuroclass.tuning.search import SearchInterrupted, tune
from neuroclass.tuning.settings import TuneSettings

QUICK = ["train.threads=1", "train.tta=none", "data.limit=400"]
NO_CHECKPOINT = "(a glassbox run keeps no checkpoint to resume from)"


def glassbox(tmp_path, *overrides):
    return build_config("digits", "glassbox", epochs=2, overrides=[*QUICK, *overrides], out=tmp_path / "runs",
                        quiet=True)


class StopInFit(Callback):
    """Requests the stop as the ``fit``-th fit starts: its training stops after one update."""

    def __init__(self, stop: StopRequest, fit: int) -> None:
        self.stop, self.fit, self.fits = stop, fit, 0

    def on_fit_start(self, state, model) -> None:
        self.fits += 1
        if self.fits == self.fit:
            self.stop.request("interrupted (test)")


def test_an_interrupted_glassbox_trial_leaves_no_folder_and_is_trained_again_on_resume(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {low: 0.0005, high: 0.005, log: true}\n")
    settings = TuneSettings(glassbox(tmp_path), space=str(space), trials=2, sampler="random", pruner="none",
                            report=False)
    stop = StopRequest()
    with pytest.raises(SearchInterrupted) as err:
        tune(settings, stop=stop, callbacks=(StopInFit(stop, 2),))
    folder = err.value.folder
    study = optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert study.trials[1].user_attrs["interrupted"]
    assert sorted(p.name for p in (folder / "trials").iterdir()) == ["trial-0000"]  # trial 1's run is gone
    assert re.fullmatch(r"interrupted \(test\) at epoch \d+, step 1", err.value.detail), err.value.detail

    tune(settings, resume=folder)
    trials = optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].params == trials[1].params
    assert sorted(p.name for p in (folder / "trials").iterdir()) == ["trial-0000", "trial-0002"]


def test_an_interrupted_glassbox_fold_leaves_nothing_and_says_no_finished_run(tmp_path):
    stop = StopRequest()
    with pytest.raises(RunInterrupted) as err:
        cross_validate(glassbox(tmp_path), 3, stop=stop, callbacks=[StopInFit(stop, 2)])
    assert not err.value.finished and err.value.path.name == ".partial-fold-2"
    assert re.fullmatch(r"interrupted \(test\) at epoch \d+, step 1", err.value.detail), err.value.detail
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_during_a_glassbox_cross_validation_keeps_nothing_and_exits_130(tmp_path, capfd):
    out = tmp_path / "runs"

    def ctrl_c_once_training() -> None:
        end = time.monotonic() + 120
        while not list(out.glob(".partial-*/folds/.partial-fold-1/config.yaml")) and time.monotonic() < end:
            time.sleep(0.005)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=ctrl_c_once_training, daemon=True)
    sender.start()
    # a budget many times the run's startup and no early stopping: the signal ends fold 1, not the budget
    code = main(["train", "digits", "--model", "glassbox", "--cv", "3", "--time-budget", "60s", "--set",
                 "train.patience=0", "--set", "train.threads=1", "--out", str(out)])
    sender.join()
    err = capfd.readouterr().err.splitlines()
    assert code == 130, err
    (said,) = [line for line in err if "SIGINT received" in line]
    assert said.endswith(f"{NO_CHECKPOINT}; press Ctrl-C again to stop at once"), said
    (stopped,) = [line for line in err if "nothing of it was kept" in line]
    assert re.fullmatch(r"neuroclass: interrupted by SIGINT at epoch \d+, step \d+; the cross-validation was not "
                        r"finished and nothing of it was kept \(its folds cannot be resumed\)", stopped), stopped
    assert not out.exists() or not list(out.iterdir())


def test_a_signal_says_a_glassbox_run_keeps_no_checkpoint_before_and_during_training(capfd):
    with stop_on_signals("glassbox"):
        signal.raise_signal(signal.SIGTERM)
    assert capfd.readouterr().err == f"neuroclass: SIGTERM received: stopping after the first training step " \
                                     f"{NO_CHECKPOINT}\n"
    with stop_on_signals() as interrupts:  # the family not known before training: the model tells
        module = GlassboxModule(Network(glassbox_options({"hidden": [4]}), n_inputs=4, n_classes=2))
        interrupts.phase.on_fit_start(None, module)
        signal.raise_signal(signal.SIGTERM)
    assert capfd.readouterr().err == f"neuroclass: SIGTERM received: stopping after the current step {NO_CHECKPOINT}\n"
