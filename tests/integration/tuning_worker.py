"""A search worker for the storage tests: ``python tuning_worker.py URL STUDY [options]`` joins
study STUDY in storage URL (opened by ``neuroclass.tuning.storage.open_storage``) and runs
``study.optimize`` on a tiny objective that sleeps instead of training.

The test queues the work as trials waiting in the study, each with a user attribute ``job``
(``study.enqueue_trial``). A worker takes the waiting trials one at a time; a trial it gets when
none was waiting has no job: it is pruned after a short pause, so that the worker keeps passing
through ``study.optimize``'s check for stale trials (where a dead worker's trial is failed and
queued again) while other workers' jobs run. A worker stops once no job is waiting or running.

Options: ``--stall``: the first job writes the user attribute ``stalled`` and sleeps until the
process is killed; ``--meet N``: the first job waits until jobs of N workers have started (so
that the jobs are shared). Each trial records the worker's ``pid`` as a user attribute.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from neuroclass.tuning.storage import open_storage

JOB_SECONDS = 0.05  # one job's work
SURPLUS_SECONDS = 0.3  # the pause of a trial that found no job waiting
MEET_TIMEOUT_SECONDS = 60


def run_job(trial: optuna.Trial, state: dict) -> float:
    """The objective: ``x`` (fixed by the queued job), a pause, ``(x - 2)**2``."""
    trial.set_user_attr("pid", os.getpid())
    if trial.user_attrs.get("job") is None:
        time.sleep(SURPLUS_SECONDS)
        raise optuna.TrialPruned("no job was waiting")
    x = trial.suggest_int("x", 0, 1000)
    first = state["jobs"] == 0
    state["jobs"] += 1
    if first and state["stall"]:
        trial.set_user_attr("stalled", True)
        time.sleep(3600)  # until SIGKILL
    if first and state["meet"] > 1:
        wait_for_workers(trial.study, state["meet"])
    time.sleep(JOB_SECONDS)
    return float((x - 2) ** 2)


def wait_for_workers(study: optuna.Study, count: int) -> None:
    """Wait until the jobs of ``count`` different workers have started."""
    deadline = time.monotonic() + MEET_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE))
        if len({t.user_attrs.get("pid") for t in trials if "job" in t.user_attrs}) >= count:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the jobs of {count} workers did not start within {MEET_TIMEOUT_SECONDS} s")


def stop_when_done(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Stop this worker once no job is waiting or running (queued again or not yet taken)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
    if not any(t.state == TrialState.WAITING or "job" in t.user_attrs for t in trials):
        study.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("study")
    parser.add_argument("--heartbeat", type=int, default=1)
    parser.add_argument("--grace", type=int, default=3)
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--meet", type=int, default=1)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(args.url, Path.cwd(), heartbeat_seconds=args.heartbeat,
                           grace_seconds=args.grace)
    study = optuna.load_study(study_name=args.study, storage=storage)
    state = {"jobs": 0, "stall": args.stall, "meet": args.meet}
    study.optimize(lambda trial: run_job(trial, state), callbacks=[stop_when_done])


if __name__ == "__main__":
    main()
