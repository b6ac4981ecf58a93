"""Successive halving over training time (tuning/rungs.py) driven through the real Search and a
real Optuna study, with trials that spend their time budget on an injected clock instead of
training: which trials each rung runs, with how much time, where the search ends and which trial
is best."""
from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError
from neuroclass.tuning.leaderboard import leaderboard_csv, leaderboard_rows
from neuroclass.tuning.rungs import PLAN_ATTR, RungPlan, choose_rungs, rung_of
from neuroclass.tuning.search import Search
from neuroclass.tuning.settings import TuneSettings
from neuroclass.tuning.space import default_space, suggest
from neuroclass.tuning.trials import best_trial, requeue_interrupted

BEST_LR = 0.005


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _search(budget: float, clock: Clock, study: optuna.Study | None = None, rungs: int | None = None,
            trials: int | None = None) -> Search:
    cfg = load_config(values={"data": {"source": "digits"}, "model": {"name": "mlp"},
                              "train": {"time_budget": budget}})
    settings = TuneSettings(cfg, trials=trials, sampler="random", rungs=rungs)
    study = study or optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    return Search(settings, Path("."), default_space(cfg), study, clock, clock())


def _score(lr: float, rung: int, rung_bonus: float) -> float:
    """Closer to BEST_LR is better; a higher rung adds ``rung_bonus``."""
    return 0.9 - 0.05 * abs(math.log10(lr / BEST_LR)) + rung_bonus * rung


def _run(search: Search, clock: Clock, overrun: float = 0.0, rung_bonus: float = 0.01,
         prune_every: int = 0) -> None:
    """The search's loop (as search._optimize) with trials that take their budget (times
    1 + ``overrun``) of the clock; every ``prune_every``-th rung-0 trial is pruned at a quarter."""
    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, search.space)
        rung = rung_of(trial)
        trial.set_user_attr("rung", rung)
        seconds = search.next_budget(rung)
        trial.set_user_attr("time_budget", seconds)
        if rung == 0 and prune_every and trial.number % prune_every == 1:
            clock.now += 0.25 * seconds
            raise optuna.TrialPruned()
        clock.now += seconds * (1 + overrun)
        return _score(params["optim.lr"], rung, rung_bonus)

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if search.should_stop():
            study.stop()

    search.share()
    if not search.should_stop():
        search.study.optimize(objective, callbacks=[after])


def _by_rung(study: optuna.Study) -> dict[int, list[optuna.trial.FrozenTrial]]:
    out: dict[int, list] = {}
    for t in study.get_trials(deepcopy=False):
        out.setdefault(rung_of(t), []).append(t)
    return out


def test_a_plan_gives_each_rung_the_same_time_and_a_third_of_the_trials():
    plan = RungPlan.for_budget(2700.0, 3)
    assert plan.counts == (9, 3, 1)
    assert plan.seconds == pytest.approx((100.0, 300.0, 900.0))
    assert [s * n for s, n in zip(plan.seconds, plan.counts)] == pytest.approx([900.0] * 3)
    assert plan.after(0) == pytest.approx(1800.0) and plan.after(2) == 0.0
    assert RungPlan.for_budget(1800.0, 2).counts == (9, 3)
    assert RungPlan.for_budget(8100.0, 5).counts == (81, 27, 9, 3, 1)  # rung 0 holds 3^(R-1) at least
    assert RungPlan.from_dict(plan.to_dict()) == plan
    assert plan.describe() == "9+ trials of 100 s, then the best 3 for 300 s, then the best 1 for 900 s"


def test_auto_rungs_follow_the_budget_and_a_requested_plan_too_short_fails():
    assert choose_rungs(None, 27 * 30.0, 30.0, 5.0) == 3  # rung 0's trials get 30 s
    assert choose_rungs(None, 27 * 30.0 - 1, 30.0, 5.0) == 2
    assert choose_rungs(None, 18 * 30.0 - 1, 30.0, 5.0) == 1
    assert choose_rungs(1, 10.0, 30.0, 5.0) == 1
    assert choose_rungs(3, 27 * 5.0, 30.0, 5.0) == 3  # asked for: down to 5 s a trial
    with pytest.raises(NeuroclassError, match="--rungs 3: .* less than 5 s .* fewer --rungs"):
        choose_rungs(3, 27 * 5.0 - 1, 30.0, 5.0)


def test_rungs_promote_the_best_and_end_within_the_budget():
    clock = Clock()
    search = _search(1800.0, clock)
    _run(search, clock)
    plan = search.rungs
    assert plan is not None and plan.counts == (9, 3, 1)
    rungs = _by_rung(search.study)
    assert len(rungs[0]) == 9 and len(rungs[1]) == 3 and len(rungs[2]) == 1
    # rung 1 trains the 3 best of rung 0 again; rung 2 the best of rung 1
    top0 = sorted(rungs[0], key=lambda t: -t.value)[:3]
    assert [t.user_attrs["promoted_from"] for t in rungs[1]] == [t.number for t in top0]
    assert [t.params for t in rungs[1]] == [t.params for t in top0]
    top1 = max(rungs[1], key=lambda t: t.value)
    assert rungs[2][0].user_attrs["promoted_from"] == top1.number and rungs[2][0].params == top1.params
    for r in (1, 2):  # each promoted trial gets about its rung's planned seconds
        assert all(t.user_attrs["time_budget"] == pytest.approx(plan.seconds[r], rel=0.1) for t in rungs[r])
    assert clock.now <= 1800.0 - search.reserve + 1e-6  # the trials end before the reserve
    assert best_trial(search.study).number == rungs[2][0].number


def test_the_best_is_the_highest_rungs_even_when_a_shorter_trial_scored_higher():
    clock = Clock()
    search = _search(1800.0, clock)
    _run(search, clock, rung_bonus=-0.05)  # longer trials score lower here: still the judges
    rungs = _by_rung(search.study)
    assert max(t.value for t in rungs[0]) > rungs[2][0].value
    assert best_trial(search.study).number == rungs[2][0].number
    rows = leaderboard_rows(search.study, Path("."))
    assert [r["rung"] for r in rows[:4]] == [2, 1, 1, 1] and rows[0]["trial"] == rungs[2][0].number
    header = leaderboard_csv(rows, "accuracy").splitlines()[0].split(",")
    assert header[:4] == ["trial", "state", "rung", "val_accuracy"]


def test_late_trials_shrink_the_later_rungs_and_pruning_makes_room_for_more_first_trials():
    clock = Clock()
    search = _search(1800.0, clock)
    _run(search, clock, overrun=0.1)  # every trial runs 10% past its budget
    rungs = _by_rung(search.study)
    assert len(rungs[2]) == 1 and rungs[2][0].state == TrialState.COMPLETE
    assert clock.now <= 1800.0 - search.reserve + 0.1 * rungs[2][0].user_attrs["time_budget"] + 1e-6
    pruned_clock = Clock()
    pruned = _search(1800.0, pruned_clock)
    _run(pruned, pruned_clock, prune_every=2)  # half of rung 0 pruned at a quarter of its time
    first = _by_rung(pruned.study)[0]
    assert len(first) > 9 and sum(t.state == TrialState.PRUNED for t in first) >= 4
    assert len(_by_rung(pruned.study)[1]) == 3


def test_a_resumed_study_keeps_its_plan_and_a_rung_without_complete_trials_ends_the_search():
    clock = Clock()
    search = _search(1800.0, clock)
    search.share()
    plan = search.rungs
    assert search.study.user_attrs[PLAN_ATTR] == plan.to_dict()
    again = _search(600.0, Clock(), study=search.study)  # resumed with less time: the same plan
    again.share()
    assert again.rungs == plan
    study = optuna.create_study(direction="maximize")
    failing = _search(1800.0, clock, study=study)
    failing.share()
    clock.now = 1800.0 - failing.reserve - plan.after(0)  # rung 0's time is up, and nothing completed
    study.tell(study.ask(), state=TrialState.FAIL)
    assert failing.should_stop() and not study.get_trials(states=(TrialState.WAITING,))


def test_rungs_only_where_one_budget_ends_the_search_and_a_retry_keeps_its_rung():
    with pytest.raises(NeuroclassError, match="--rungs 3 with --trials"):
        _search(1800.0, Clock(), rungs=3, trials=5).settings.validate()
    flat = _search(1800.0, Clock(), trials=5)
    flat.share()
    assert flat.rungs is None and flat.study.user_attrs[PLAN_ATTR] is None
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"optim.lr": 0.01}, user_attrs={"rung": 1, "promoted_from": 0})
    trial = study.ask()
    trial.suggest_float("optim.lr", 1e-4, 1e-1, log=True)  # left RUNNING, as by a killed process
    assert requeue_interrupted(study, default_storage=True) == [trial.number]
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert rung_of(waiting) == 1 and waiting.user_attrs["retry_of"] == trial.number
