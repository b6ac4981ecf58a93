"""A study's trials: which count as done, which an interruption left to run again, and the lines
``neuroclass tune`` prints about them.

Done = COMPLETE or PRUNED (a pruned trial was judged; it is not run again). A trial an interrupt
stopped (Ctrl-C, SIGTERM: user attribute "interrupted") or one left RUNNING by a killed process
(SIGKILL) is failed and its values queued again (Optuna's enqueue_trial) when the study resumes, once.
With a shared storage (PostgreSQL), a worker's stale RUNNING trials are failed and retried by
Optuna's heartbeat instead (RetryFailedTrialCallback), since other workers may be running them.
"""
from __future__ import annotations

import time
import warnings
from typing import Callable

import optuna
from optuna.trial import TrialState

from neuroclass.tuning.rungs import rung_of

DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def finished_count(study: optuna.Study) -> int:
    """Trials of ``study`` that are COMPLETE or PRUNED."""
    return len(study.get_trials(deepcopy=False, states=DONE))


def running_count(study: optuna.Study, before: int | None = None) -> int:
    """Trials of ``study`` RUNNING now (in any worker), those numbered below ``before`` only when
    given; a trial marked "surplus" (about to fail without training) is not counted.

    Trial numbers follow the order in which workers asked for trials, so that of two workers that
    ask for the last trial at the same moment, the one that asked first (lower number) runs it."""
    return sum(not t.user_attrs.get("surplus") and (before is None or t.number < before)
               for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def is_surplus(study: optuna.Study, number: int, target: int) -> bool:
    """Whether trial ``number``, just asked for, would be one too many for ``target`` trials: those
    done and those running that were asked for before it (in any worker) reach ``target``."""
    return finished_count(study) + running_count(study, before=number) >= target


def earlier_defaults(study: optuna.Study, trial: optuna.Trial | optuna.trial.FrozenTrial) -> int | None:
    """The number of a trial before ``trial`` that also runs the config's own values (user attribute
    "defaults": workers that start a new shared study together each queue them), or None. A retry
    (whose user attributes Optuna's retry callback copies) is no duplicate, nor is what it retries."""
    trials = study.get_trials(deepcopy=False)
    if any(t.number == trial.number and retry_of(t) is not None for t in trials):
        return None
    return next((t.number for t in trials
                 if t.number < trial.number and t.user_attrs.get("defaults") and retry_of(t) is None), None)


def wait_for_workers(study: optuna.Study, target: int, left: Callable[[], float], poll: float = 1.0,
                     sleep: Callable[[float], None] = time.sleep) -> None:
    """With ``target`` trials to finish and the last ones running in other workers: wait (polling
    every ``poll`` seconds, while ``left()`` > 0) until they finish, or until one of them turns out
    stale (its worker died: Optuna's fail_stale_trials fails it after the heartbeat grace and its
    retry is queued), so that this worker runs the retry instead of a trial too many."""
    while left() > 0:
        done, running = finished_count(study), running_count(study)
        if done >= target or done + running < target:
            return
        sleep(poll)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)


def requeue_interrupted(study: optuna.Study, default_storage: bool) -> list[int]:
    """Fail the RUNNING trials a killed process left (only for this machine's own storage,
    ``default_storage``) and queue the values of every interrupted or killed trial again, once.
    Returns the numbers of the trials queued again."""
    trials = study.get_trials(deepcopy=False)
    retried = {retry_of(t) for t in trials}
    queued = []
    for t in trials:
        if t.state == TrialState.RUNNING and default_storage:
            study.tell(t.number, state=TrialState.FAIL)
        elif not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted")):
            continue
        if t.number in retried or not t.params:
            continue
        rung = {"rung": t.user_attrs["rung"]} if "rung" in t.user_attrs else {}
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, **rung}, skip_if_exists=False)
        queued.append(t.number)
    return queued


def trial_line(trial: optuna.trial.FrozenTrial, metric: str, best: optuna.trial.FrozenTrial | None) -> str:
    """'trial 3: optim.lr=0.0012, train.batch_size=128 -> validation accuracy 0.9412 (41 s, 6
    epochs); best 0.9455 (trial 1)'."""
    params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    seconds = trial.user_attrs.get("seconds")
    took = f"{seconds:.0f} s" if seconds is not None else "?"
    if trial.state == TrialState.COMPLETE:
        epochs = trial.user_attrs.get("epochs")
        what = f"validation {metric} {trial.value:.4f} ({took}, {epochs} epoch{'' if epochs == 1 else 's'})"
    elif trial.state == TrialState.PRUNED:
        fold = trial.user_attrs.get("pruned_at_fold")
        where = f"after fold {fold}" if fold else f"at epoch {trial.user_attrs.get('pruned_at_epoch', '?')}"
        what = f"pruned {where} ({took})"
    else:
        what = f"failed: {trial.user_attrs.get('error', 'see the log')}"
    tail = f"; best {best.value:.4f} (trial {best.number})" if best is not None else ""
    again = retry_of(trial)
    retry = f" (retry of trial {again})" if again is not None else (
        " (the config's own values)" if trial.user_attrs.get("defaults") else "")
    if trial.user_attrs.get("promoted_from") is not None:
        retry += f" (rung {rung_of(trial)}: trial {trial.user_attrs['promoted_from']}'s values)"
    return f"trial {trial.number}{retry}: {params} -> {what}{tail}"


def ranked(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The COMPLETE trials, best first: the highest rung first (tuning/rungs.py; a longer trial
    is the better judge), then by value in the study's direction, then earlier first."""
    sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: (-rung_of(t), sign * t.value, t.number))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best COMPLETE trial (first of ``ranked``: without rungs, Optuna's best value), or None."""
    return next(iter(ranked(study)), None)


def retry_of(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the trial ``trial`` runs again: after --resume (user attribute "retry_of"),
    or after a dead worker's heartbeat went stale (Optuna's retry callback); None for a first run."""
    if trial.user_attrs.get("retry_of") is not None:
        return trial.user_attrs["retry_of"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
