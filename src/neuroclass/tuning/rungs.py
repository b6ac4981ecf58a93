"""Successive halving over training time: rungs of trials whose time budgets grow.

A search with R rungs (``tune --rungs R``; growth factor ETA = 3) spends about 1/R of its time on
each rung. Rung 0 runs the sampler's trials (TPE or random), each with the same short time budget,
pruned by the study's pruner from their per-epoch validation metric; rung r trains the best
n_r = ceil(n_0 / ETA^r) values of rung r - 1 again with ETA times the time each; the last rung is
the fewest, longest trials, and the search's best is the best trial of the highest rung reached.
This is successive halving (Jamieson & Talwalkar 2016; Li et al. 2018, "Hyperband") with the
training time as the resource. Since a trial's learning-rate schedule follows its own time budget
(the trainer's clock-driven schedule), a promoted trial is trained again from scratch, not
continued; and it is not pruned (its epochs are not comparable with rung 0's).

The plan (each rung's trial seconds and count) is fixed when a study starts and kept in the
study's user attributes ("rung_plan"), so that a resumed study goes on with the same rungs; the
trials' rung is their user attribute "rung" (0 when absent).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from neuroclass.errors import NeuroclassError

ETA = 3  # each rung keeps 1/ETA of the trials and gives each ETA times the time
FIRST_RUNG_TRIALS = 9  # trials rung 0 is planned for (pruning makes room for more)
AUTO_RUNGS = (3, 2)  # --rungs auto: the most rungs whose first trials get >= min_seconds each
PLAN_ATTR = "rung_plan"


def rung_of(trial: optuna.trial.FrozenTrial) -> int:
    """The rung of ``trial`` (user attribute "rung"; 0 for a trial of a search without rungs)."""
    return int(trial.user_attrs.get("rung", 0))


@dataclass(frozen=True)
class RungPlan:
    """Each rung's planned trial budget (``seconds``, s) and number of trials (``counts``)."""

    seconds: tuple[float, ...]
    counts: tuple[int, ...]

    @classmethod
    def for_budget(cls, usable: float, rungs: int) -> "RungPlan":
        """Rungs of equal total time over ``usable`` seconds: rung r has ceil(9 / 3^r) trials
        (at least 3^(R-1) in rung 0) of usable / R / count seconds each."""
        first = max(FIRST_RUNG_TRIALS, ETA ** (rungs - 1))
        counts = tuple(max(1, math.ceil(first / ETA ** r)) for r in range(rungs))
        return cls(tuple(usable / rungs / n for n in counts), counts)

    @property
    def last(self) -> int:
        return len(self.counts) - 1

    def after(self, rung: int) -> float:
        """Planned seconds of the rungs above ``rung``."""
        return sum(s * n for s, n in zip(self.seconds[rung + 1:], self.counts[rung + 1:]))

    def to_dict(self) -> dict:
        return {"seconds": list(self.seconds), "counts": list(self.counts), "eta": ETA}

    @classmethod
    def from_dict(cls, record: dict) -> "RungPlan":
        return cls(tuple(float(s) for s in record["seconds"]), tuple(int(n) for n in record["counts"]))

    def describe(self) -> str:
        """'9+ trials of 65 s, then the best 3 for 196 s, then the best 1 for 588 s'."""
        parts = [f"{self.counts[0]}+ trials of {self.seconds[0]:.0f} s"]
        parts += [f"the best {n} for {s:.0f} s" for s, n in zip(self.seconds[1:], self.counts[1:])]
        return ", then ".join(parts)


def choose_rungs(requested: int | None, usable: float, auto_seconds: float, least_seconds: float) -> int:
    """How many rungs: ``requested`` (--rungs N), or for None (auto) the most of AUTO_RUNGS whose
    rung-0 trials get at least ``auto_seconds`` of the ``usable`` seconds, else 1 (no rungs).
    NeuroclassError when a requested plan leaves rung 0's trials less than ``least_seconds``."""
    if requested is not None:
        if requested > 1 and RungPlan.for_budget(usable, requested).seconds[0] < least_seconds:
            raise NeuroclassError(f"--rungs {requested}: the time budget leaves the first rung's trials less "
                                  f"than {least_seconds:.0f} s each; give a longer --time-budget or fewer --rungs")
        return requested
    for rungs in AUTO_RUNGS:
        if RungPlan.for_budget(usable, rungs).seconds[0] >= auto_seconds:
            return rungs
    return 1


def rung_budget(study: optuna.Study, plan: RungPlan, rung: int, left: float) -> float:
    """The time budget (s) of a trial of ``rung`` starting now with ``left`` seconds left: rung 0's
    planned seconds, or less when that is all rung 0 has left; a higher rung's trial its planned
    share of what is left, in proportion to the trials of its rung still waiting and the rungs above
    (so that an early or late rung 0 moves every later trial's budget alike)."""
    if rung == 0:
        return min(plan.seconds[0], left - plan.after(0))
    waiting = sum(rung_of(t) == rung for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    planned = plan.seconds[rung] * (1 + waiting) + plan.after(rung)
    return left * plan.seconds[rung] / planned


def advance(study: optuna.Study, plan: RungPlan, left: float) -> tuple[bool, list[optuna.trial.FrozenTrial]]:
    """Between trials: (whether the search is over, the trials promoted just now). While the current
    rung has trials running or waiting, or (rung 0) time for more trials of its own, it goes on;
    then the best trials of the rung are queued (Optuna's enqueue_trial, user attributes "rung" and
    "promoted_from") into the next rung, or the search ends after the last rung or when the rung
    has no complete trial."""
    trials = study.get_trials(deepcopy=False)
    current = max((rung_of(t) for t in trials), default=0)
    if any(rung_of(t) == current and t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
        return False, []
    if current == 0 and left - plan.after(0) >= 0.5 * plan.seconds[0]:
        return False, []
    if current >= plan.last:
        return True, []
    best = best_of_rung(study, current, plan.counts[current + 1])
    for t in best:
        study.enqueue_trial(t.params, user_attrs={"rung": current + 1, "promoted_from": t.number})
    return not best, best


def best_of_rung(study: optuna.Study, rung: int, count: int) -> list[optuna.trial.FrozenTrial]:
    """The ``count`` best COMPLETE trials of ``rung`` (in the study's direction; earlier first on ties)."""
    sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if rung_of(t) == rung]
    return sorted(complete, key=lambda t: (sign * t.value, t.number))[:count]
