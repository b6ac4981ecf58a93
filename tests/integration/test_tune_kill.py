"""A search killed with SIGKILL mid-trial, then `neuroclass tune --resume`: no finished trial is
run again, the killed one is failed and run once more, and nothing of it is left half-written."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "neuroclass.cli"]


def _wait_for(condition, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the search to reach the trial to kill")
        time.sleep(0.05)


def test_sigkill_mid_trial_then_resume(tmp_path):
    out = tmp_path / "runs"
    # one thread: another process busy on the cores does not slow the search by oversubscription
    cmd = [*CLI, "tune", "digits", "--model", "mlp", "--trials", "3", "--epochs", "10", "--sampler", "random",
           "--pruner", "none", "--set", "train.tta=none", "--set", "model.options.hidden=[64]",
           "--set", "train.threads=1", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def second_trial_training() -> bool:
            return any(out.glob("tune-*/trials/trial-0000")) and any(out.glob("tune-*/trials/.partial-trial-0001*"))
        _wait_for(second_trial_training, 240)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    (folder,) = out.glob("tune-*")
    storage = f"sqlite:///{folder / 'study.db'}"
    before = optuna.load_study(study_name=folder.name, storage=storage).trials
    assert [t.state for t in before] == [TrialState.COMPLETE, TrialState.RUNNING]

    done = subprocess.run([*CLI, "tune", "--resume", str(folder)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name=folder.name, storage=storage).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    assert len({json.dumps(t.params, sort_keys=True) for t in complete}) == 3  # no trial repeated
    assert complete[0].number == 0 and complete[0].params == before[0].params  # the first kept as it was
    assert trials[1].state == TrialState.FAIL
    assert [t.params for t in trials if t.user_attrs.get("retry_of") == 1] == [before[1].params]
    assert not list((folder / "trials").glob(".partial-*"))
    assert sorted(p.name for p in (folder / "trials").iterdir()) == sorted(
        f"trial-{t.number:04d}" for t in complete)
    assert (folder / "best").resolve().parent == (folder / "trials").resolve()
