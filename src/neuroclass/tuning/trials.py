"""A study's trials: which count as done, which an interruption left to run again, and the lines
``neuroclass tune`` prints about them.

Done = COMPLETE or PRUNED (a pruned trial was judged; it is not run again). A trial an interrupt
stopped (Ctrl-C, SIGTERM: user attribute "interrupted") or one left RUNNING by a killed process
(SIGKILL) is failed and its values queued again (Optuna's enqueue_trial) when the study resumes, once.
With a shared storage (PostgreSQL), a worker's stale RUNNING trials are failed and retried by
Optuna's heartbeat instead (RetryFailedTrialCallback), since other workers may be running them.
"""
from __future__ import annotations

import contextlib
import logging
import time
import warnings
from typing import Callable, Iterator

import optuna
from optuna.trial import TrialState

from neuroclass.tuning.rungs import rung_of

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
SHARE_ATTR = "trial_seconds"  # the study's user attribute: each trial's share of the budget (s)
# trials failing in a row with one error that stop the search: before any trial finished, and after
REPEATS_BEFORE_ANY, REPEATS_AFTER_SOME = 3, 10
OPTUNA_TRIAL_LOGGER = "optuna.study._optimize"  # the logger of Optuna's "Trial N failed with ..." warnings


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


def repeated_failure(study: optuna.Study) -> tuple[str, int] | None:
    """(the error, how many trials in a row failed with it) when the study's last trials all
    failed with the same error (user attribute "error"): REPEATS_BEFORE_ANY of them while no trial
    has finished, REPEATS_AFTER_SOME after; None otherwise. Trials still running, interrupted ones
    and surplus ones (not run) are left out: a stop or a second worker is no failure of the data.

    A search whose trials keep failing alike (data that no trial can train on) would otherwise go
    on for ever, since --trials counts finished trials only."""
    ended = [t for t in study.get_trials(deepcopy=False)
             if t.state != TrialState.RUNNING and t.state != TrialState.WAITING
             and not t.user_attrs.get("interrupted") and not t.user_attrs.get("surplus")]
    limit = REPEATS_AFTER_SOME if any(t.state in DONE for t in ended) else REPEATS_BEFORE_ANY
    last = sorted(ended, key=lambda t: t.number)[-limit:]
    errors = {t.user_attrs.get("error") if t.state == TrialState.FAIL else None for t in last}
    if len(last) < limit or len(errors) != 1 or None in errors:
        return None
    return errors.pop(), limit


def recorded_share(study: optuna.Study) -> float | None:
    """Each trial's share of the budget (s) as the study recorded it when it was first shared
    (SHARE_ATTR), or for a study recorded before that, the largest budget a first-rung trial was
    given (user attribute "time_budget"); None when neither is known."""
    if study.user_attrs.get(SHARE_ATTR) is not None:
        return float(study.user_attrs[SHARE_ATTR])
    given = [t.user_attrs.get("time_budget") for t in study.get_trials(deepcopy=False) if rung_of(t) == 0]
    return max((float(g) for g in given if g is not None), default=None)


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


class _FailedTrialFilter(logging.Filter):
    """Drops Optuna's "Trial N failed with ..." warnings (a traceback each): the search prints its
    own one line for each failed trial (trial_line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Trial ") and " failed with " in record.msg)


@contextlib.contextmanager
def failed_trials_unlogged() -> Iterator[None]:
    """Optuna's failed-trial warnings dropped inside the ``with`` block; its logger as it was after."""
    logger, dropped = logging.getLogger(OPTUNA_TRIAL_LOGGER), _FailedTrialFilter()
    logger.addFilter(dropped)
    try:
        yield
    finally:
        logger.removeFilter(dropped)
