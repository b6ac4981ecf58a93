"""``neuroclass tune``: a hyperparameter search over the one pipeline, with Optuna underneath.

A search is an Optuna study (Akiba et al. 2019) whose trials are ordinary runs. Samplers: grid
(GridSampler: exactly the grid), random (RandomSampler; Bergstra & Bengio 2012) and tpe
(TPESampler; Bergstra et al. 2011); pruners: median (MedianPruner) or halving
(SuccessiveHalvingPruner). The study folder ``<out>/tune-<data>-<stamp>/`` holds the storage
(``study.db``, SQLite, unless --storage names another), ``tune.json`` (the settings a resume
reuses), ``config.yaml`` (what is not searched), ``trials/trial-NNNN`` run folders, the leaderboard,
``best`` and ``report.html`` (tuning/leaderboard.py, tuning/study_report.py).

The time budget covers the whole search: each trial gets the same share of it (what is left after
the final reserve, divided by the trials planned: ``--trials``, the grid's size, or
DEFAULT_TRIALS, fewer when that would leave a trial less than TRIAL_SHARE_SECONDS), so trials compare fairly; trials that are pruned early leave time for more. No
trial starts with less than half its share left. The share is recorded in the study (and its
name in tune.json), so that a resume, of a copied or renamed folder too, continues the same study
with the same share: a shorter budget runs fewer trials, not shorter ones.

A search ends early, with the error as one line, when its trials keep failing alike
(trials.repeated_failure), and after the trial that a stop request (Ctrl-C, SIGTERM) finds running.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import optuna

from neuroclass import data as data_mod
from neuroclass.config import Config
from neuroclass.errors import NeuroclassError, RunInterrupted, counted
from neuroclass.runs.lock import lock_folder
from neuroclass.data.survey import survey_folder
from neuroclass.models.registry import PHOTO_KIND, resolve_default_model
from neuroclass.runs.names import new_stamped_folder
from neuroclass.training.callbacks import StopRequest
from neuroclass.training.resolution import image_folder
from neuroclass.training.trainer import TrainingDiverged
from neuroclass.tuning.objective import METRICS, PRUNING_WARMUP, TrialPlan, remove_unfinished, run_trial, trial_name
from neuroclass.tuning.rungs import PLAN_ATTR, RungPlan, advance, choose_rungs, rung_budget, rung_of
from neuroclass.tuning.settings import MIN_TRIAL_SECONDS, TuneSettings, resumed_end, settings_of, write_settings
from neuroclass.tuning.space import SearchSpace, base_values, default_space, load_space
from neuroclass.tuning.storage import check_study_space, open_storage
from neuroclass.tuning.trials import (SHARE_ATTR, best_trial, failed_trials_unlogged, finished_count, recorded_share,
                                      repeated_failure, requeue_interrupted, trial_line, wait_for_workers)

log = logging.getLogger(__name__)
DEFAULT_TRIALS = 20  # trials a budget is shared among when neither --trials nor a grid says
TRIAL_SHARE_SECONDS = 30.0  # without --trials, no trial's share is planned below this (if 2 trials allow)
FINAL_SECONDS = 5.0  # the leaderboard and the study's report
REPORT_SHARE = 0.05  # of the budget, at most 30 s: the best run's report
# a running trial silent for this many heartbeats is taken for a dead worker's and run again
# (storage.GRACE_SECONDS: 3 missed heartbeats, so that a slowed-down worker is not taken for dead)
GRACE_HEARTBEATS = 3


@dataclass
class TuneResult:
    folder: Path
    best: Path | None  # the best trial's run folder
    rows: list[dict]  # the leaderboard
    report: Path | None = None
    ensemble: Path | None = None


class Search:
    """A study being run: its folder, storage, study, space and the clock of its budget."""

    def __init__(self, settings: TuneSettings, folder: Path, space: SearchSpace, study: optuna.Study,
                 clock: Callable[[], float], start: float) -> None:
        self.settings, self.folder, self.space, self.study = settings, folder, space, study
        self.clock, self.start = clock, start
        budget = settings.base.train.time_budget
        self.deadline = None if budget is None else start + budget
        report = min(30.0, REPORT_SHARE * budget) if budget and settings.report else 0.0
        self.reserve = FINAL_SECONDS + report  # the end: leaderboard, study report, the best run's report
        self.planned = settings.trials or (space.grid_size() if settings.sampler == "grid" else DEFAULT_TRIALS)
        self.trial_seconds: float | None = None  # a trial's share (of rung 0's, with rungs)
        self.rungs: RungPlan | None = None
        self.failed: str | None = None  # the error the trials kept failing with, which ended the search

    @property
    def trials_dir(self) -> Path:
        return self.folder / "trials"

    def left(self) -> float:
        """Seconds left for trials (the final reserve held back); inf without a budget."""
        if self.deadline is None:
            return float("inf")
        return self.deadline - self.reserve - self.ensemble_reserve() - self.clock()

    def ensemble_reserve(self) -> float:
        """With --ensemble K: seconds to score K members on the test split, from the slowest test
        pass of the trials so far (timing.json test_seconds), with a margin."""
        if not self.settings.ensemble:
            return 0.0
        seconds = [t.user_attrs.get("test_seconds") or 0.0 for t in self.study.get_trials(deepcopy=False)]
        return 2.0 + 1.5 * self.settings.ensemble * max(seconds, default=0.0)

    def share(self) -> None:
        """Each trial's time budget: what is left, over the trials still planned; or with rungs
        (tuning/rungs.py), the first rung's trials' planned seconds."""
        if self.deadline is None:
            return
        self.rungs = self._rung_plan()
        if self.rungs is not None:
            self.trial_seconds = self.rungs.seconds[0]
            return
        # a resumed study keeps its share, so that its trials compare fairly with the earlier ones;
        # a shorter budget runs fewer of them (should_stop), not shorter ones
        self.trial_seconds = recorded_share(self.study)
        if self.trial_seconds is not None:
            return
        to_run = max(1, self.planned - finished_count(self.study))
        if self.settings.trials is None and self.settings.sampler != "grid":  # the default count: fewer,
            # longer trials when the budget is short (each at least TRIAL_SHARE_SECONDS; at least 2)
            to_run = max(2, min(to_run, int(self.left() // TRIAL_SHARE_SECONDS)))
        self.trial_seconds = self.left() / to_run
        if self.trial_seconds < MIN_TRIAL_SECONDS:
            fix = (" or a smaller grid (--space)" if self.settings.sampler == "grid" else
                   " or fewer --trials" if self.settings.trials else "")
            raise NeuroclassError(f"--time-budget leaves {self.trial_seconds:.1f} s for each of "
                                  f"{counted(to_run, 'trial')}; give a longer --time-budget{fix}")
        self.study.set_user_attr(SHARE_ATTR, self.trial_seconds)

    def _rung_plan(self) -> RungPlan | None:
        """The study's rung plan: the one it was started with (its user attribute), or for a new
        study one made now from what is left (None: no rungs; always so with --trials, a grid or a
        shared storage, and for a study started without rungs)."""
        recorded = self.study.user_attrs.get(PLAN_ATTR, "none recorded")
        if recorded != "none recorded" or self.study.get_trials(deepcopy=False):
            return RungPlan.from_dict(recorded) if isinstance(recorded, dict) else None
        s = self.settings
        flat = s.trials is not None or s.sampler == "grid" or s.storage is not None
        count = 1 if flat else choose_rungs(s.rungs, self.left(), TRIAL_SHARE_SECONDS, MIN_TRIAL_SECONDS)
        plan = RungPlan.for_budget(self.left(), count) if count > 1 else None
        self.study.set_user_attr(PLAN_ATTR, None if plan is None else plan.to_dict())
        return plan

    def next_budget(self, rung: int = 0) -> float | None:
        """The budget (s) of a trial of ``rung`` starting now: its share, or what is left when that
        is less (tuning/rungs.py rung_budget with rungs); None without a time budget."""
        if self.trial_seconds is None:
            return None
        if self.rungs is not None:
            return max(1.0, rung_budget(self.study, self.rungs, rung, self.left()))
        return max(1.0, min(self.trial_seconds, self.left()))

    def should_stop(self) -> bool:
        """Between trials: whether the search is over (--trials done, the budget spent, or the last
        rung done); with rungs, a rung's time being up queues the best of it into the next rung."""
        if self.settings.trials is not None and finished_count(self.study) >= self.settings.trials:
            return True
        if self.rungs is None:
            return self.trial_seconds is not None and self.left() < 0.5 * self.trial_seconds
        over, promoted = advance(self.study, self.rungs, self.left())
        if promoted:
            rung = rung_of(promoted[0]) + 1
            log.info("rung %d (of 0..%d): the best %d of rung %d (trials %s) trained again for about %.0f s each",
                     rung, self.rungs.last, len(promoted), rung - 1,
                     ", ".join(str(t.number) for t in promoted), self.rungs.seconds[rung])
        return over or self.left() < MIN_TRIAL_SECONDS


class SearchInterrupted(Exception):
    """A search stopped by a stop request or Ctrl-C; ``folder``: the study folder to resume."""

    def __init__(self, folder: Path, detail: str) -> None:
        super().__init__(f"{detail}; resume with: neuroclass tune --resume {folder}")
        self.folder, self.detail = folder, detail


def tune(settings: TuneSettings, stop: StopRequest | None = None, resume: str | Path | None = None,
         clock: Callable[[], float] = time.perf_counter, started: float | None = None,
         callbacks: tuple = (), show_failures: bool = False) -> TuneResult:
    """Run (or with ``resume``, a study folder: continue) a search, then write its leaderboard,
    ``best``, report and, with ``settings.ensemble``, the ensemble of the top trials.

    Raises NeuroclassError for bad settings, space, data (more --cv folds than the smallest class
    allows included) or storage (before any trial; an existing study loses nothing), and when
    the trials keep failing with one error (trials.repeated_failure: the search ends, its
    leaderboard written, with that error); SearchInterrupted when ``stop`` is requested (or
    Ctrl-C; no trial starts after it) (the completed trials stay; ``resume`` continues).
    ``callbacks``: added to every trial's training; ``clock``: seconds, for the budget, counted
    from ``started`` (default: now); ``show_failures``: keep Optuna's own warning (with its
    traceback) for each failed trial, which the search otherwise reports in one line."""
    from neuroclass.tuning.leaderboard import finish_study

    search, lock = _start(settings, resume, clock, clock() if started is None else started)
    folder, study, settings = search.folder, search.study, search.settings
    try:
        for number in requeue_interrupted(study, default_storage=settings.storage is None):
            remove_unfinished(search.trials_dir, trial_name(number))
        log.info("%s", _first_line(search))
        interrupted = None
        try:
            _optimize(search, stop, callbacks, show_failures)
        except (RunInterrupted, KeyboardInterrupt) as exc:
            interrupted = getattr(exc, "detail", None) or "stopped"
        if interrupted is None and stop is not None and stop.requested:  # honoured between trials
            interrupted = stop.detail
        result = finish_study(search)  # what finished is on the leaderboard, even after a stop
    finally:
        if lock is not None:
            lock.close()
    if interrupted is not None:
        raise SearchInterrupted(folder, interrupted) from None
    if search.failed is not None:
        raise NeuroclassError(search.failed)
    return result


def _start(settings: TuneSettings, resume: str | Path | None, clock: Callable[[], float],
           start: float) -> tuple[Search, object]:
    """The search (its settings resolved, space checked, study opened or created and recorded)
    and the study folder's lock (None where not taken). Raises NeuroclassError before any trial;
    a new study folder that fails to start leaves nothing behind."""
    given = settings
    if resume is not None:
        settings = settings_of(resume, settings)
    settings.validate()
    base = _resolve_family(settings.base, settings.cv)
    space = load_space(settings.space, base) if settings.space else default_space(base, settings.sampler == "grid")
    if settings.sampler == "grid" and settings.trials is not None and space.grid_size() > settings.trials:
        raise NeuroclassError(f"--sampler grid: the grid has {space.grid_size()} points but --trials is "
                              f"{settings.trials}; give --trials {space.grid_size()} or a smaller grid")
    folder = Path(resume) if resume is not None else new_stamped_folder(Path(settings.base.out), "tune", settings.base.data.source, "study")
    lock = _lock(folder)
    if resume is None:  # recorded in tune.json, so that a copied or renamed folder resumes its own study
        settings = replace(settings, study=settings.study or folder.name)
    try:
        study = _open_study(settings, folder, space)
        if resume is not None:
            settings = resumed_end(settings, study, given)
        search = Search(replace(settings, base=base), folder, space, study, clock, start)
        search.share()
        if resume is None:
            write_settings(folder, settings, space)
            _start_from_defaults(study, base, space, settings.sampler)
    except BaseException:
        if lock is not None:
            lock.close()
        if resume is None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return search, lock


def _optimize(search: Search, stop: StopRequest | None, callbacks: tuple, show_failures: bool) -> None:
    """Run trials until the search is over, a stop is requested (checked after each trial too:
    a trial that fails before training, or ends as the request comes, starts no other one), or
    the trials keep failing alike (``search.failed`` then says with what)."""
    plan = TrialPlan(search.settings.base, search.space, search.settings.metric, search.trials_dir,
                     search.next_budget, stop, search.clock, search.settings.command, callbacks,
                     search.settings.trials, search.settings.cv)

    def objective(trial: optuna.Trial) -> float:
        return run_trial(trial, plan)

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if not trial.user_attrs.get("surplus"):
            log.info("%s", trial_line(trial, search.settings.metric, best_trial(study)))
        if stop is not None and stop.requested:
            study.stop()
            return
        if trial.state == optuna.trial.TrialState.FAIL and (repeated := repeated_failure(study)) is not None:
            error, count = repeated
            search.failed = f"{error} (the last {count} trials failed with it; the search stopped)"
            study.stop()
            return
        if search.settings.trials is not None:  # the last trials may be running in other workers
            wait_for_workers(study, search.settings.trials, search.left)
        if search.should_stop():
            study.stop()

    if search.should_stop() or (stop is not None and stop.requested):
        return
    with contextlib.nullcontext() if show_failures else failed_trials_unlogged():
        search.study.optimize(objective, callbacks=[after_trial], catch=(NeuroclassError, TrainingDiverged),
                              gc_after_trial=True)



def _start_from_defaults(study: optuna.Study, base: Config, space: SearchSpace, sampler: str) -> None:
    """A new study's first trial: the config's own values of the searched keys (space.base_values),
    queued (Optuna's enqueue_trial), so the search starts where ``train`` would. Not for a grid."""
    values = base_values(base, space)
    if sampler != "grid" and values and not study.get_trials(deepcopy=False):
        study.enqueue_trial(values, user_attrs={"defaults": True})


def _resolve_family(base: Config, cv: int | None = None) -> Config:
    """model.name=auto becomes the data's family once (the photo family for a folder of photos,
    read from the files' headers; else cnn for images, mlp for tables), so that every trial trains
    the same family and the family's default space applies. Other data is loaded here first, so
    bad data fails before any trial (and its cache is warm for them); photos are decoded by each
    trial at the side its own budget chooses (training/resolution.py). With ``cv``, the folds are
    checked once here, as ``train --cv`` checks them (NeuroclassError: more folds than the
    smallest class has examples outside the test split), not found wrong by every trial."""
    folder = image_folder(base.data.source)
    if folder is not None and base.data.image_size is None and survey_folder(folder, base.data.max_pixels).photo_like:
        return replace(base, model=resolve_default_model(base.model, PHOTO_KIND))
    dataset = data_mod.load(base.data)
    if cv is not None:
        data_mod.split(dataset, base.data.val_fraction, base.data.test_fraction, base.train.seed, folds=cv, fold=1)
    return replace(base, model=resolve_default_model(base.model, dataset.kind))


def _lock(folder: Path):
    """The study folder's lock, held while this process runs the search (None where nothing can be
    locked). NeuroclassError when another process holds it, or the folder is missing."""
    if not folder.is_dir():
        raise NeuroclassError(f"--resume '{folder}': no such study folder; give the folder tune printed")
    return lock_folder(folder, ".lock", busy="another neuroclass tune is running this search; wait for it to "
                       "end, or use --storage and --study to add workers to a study")




def _open_study(settings: TuneSettings, folder: Path, space: SearchSpace) -> optuna.Study:
    """The study in its storage, created or (with the same name) joined. NeuroclassError when the
    storage cannot be reached, or a study of that name searches another space or metric."""
    storage = open_storage(settings.storage, folder, heartbeat_seconds=settings.heartbeat,
                           grace_seconds=GRACE_HEARTBEATS * settings.heartbeat)
    name = settings.study or _recorded_study(storage, folder)
    direction = "maximize" if METRICS[settings.metric][1] else "minimize"
    sampler = _sampler(settings, space)
    # steps: parts of a trial's schedule (objective.Pruning); halving's rungs at 10%, 30% and 90% of it
    pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=PRUNING_WARMUP),
              "halving": optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3),
              "none": optuna.pruners.NopPruner()}[settings.pruner]
    study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner,
                                direction=direction, load_if_exists=True)
    # a resumed study, or another worker of a shared one, draws new values, not the first ones again
    done = len(study.get_trials(deepcopy=False))
    if done or settings.storage is not None:
        study.sampler = _sampler(settings, space, (done,) if settings.storage is None else (done, os.getpid()))
    check_study_space(study, json.loads(space.signature()))
    recorded = study.user_attrs.get("metric")
    if recorded is None:
        study.set_user_attr("metric", settings.metric)
    elif recorded != settings.metric:
        raise NeuroclassError(f"study '{name}' selects by validation {recorded}, not {settings.metric}; give "
                              f"--metric {recorded}, or another --study name")
    return study


def _recorded_study(storage, folder: Path) -> str:
    """The study of a folder whose tune.json names none (folders written before the name was
    recorded): the only study in its storage, else the folder's name (its name when created)."""
    names = optuna.get_all_study_names(storage)
    return names[0] if len(names) == 1 else folder.name


def _sampler(settings: TuneSettings, space: SearchSpace, entropy: tuple = ()) -> optuna.samplers.BaseSampler:
    """The sampler, seeded by train.seed alone, or mixed with ``entropy`` (the trials so far, a
    worker's process id) through NumPy's SeedSequence, so that a resumed study or two workers
    started together draw different values (a sum would collide: pid + 1 trial = pid + 1 + 0)."""
    seed = settings.base.train.seed
    if entropy:
        seed = int(np.random.SeedSequence([seed, *entropy]).generate_state(1)[0])
    if settings.sampler == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(3, (settings.trials or DEFAULT_TRIALS) // 4)))


def _first_line(search: Search) -> str:
    """'tune: 20 trials of 81 s (tpe, median pruning) on digits, mlp; validation accuracy;
    space optim.lr 0.0005..0.02 (log), ...; study folder runs/tune-digits-...'"""
    s = search.settings
    each = f" of {search.trial_seconds:.0f} s" if search.trial_seconds is not None else ""
    count = counted(search.planned, "trial") if s.trials or s.sampler == "grid" else f"trials{each} until the budget ends"
    if s.trials or s.sampler == "grid":
        count += each
    pruning = f"{s.pruner} pruning"
    if search.rungs is not None:
        count = f"successive halving in {len(search.rungs.counts)} rungs: {search.rungs.describe()}"
        pruning += " in rung 0"
    done = finished_count(search.study)
    resumed = f"; {done} done before" if done else ""
    if s.trials is not None and done >= s.trials:  # another worker's, or a resumed search's
        are = "is" if done == 1 else "are"
        count, resumed = f"nothing to run: {counted(done, 'trial')} {are} done, --trials {s.trials}", ""
    return (f"tune: {count} ({s.sampler}, {pruning}) on {s.base.data.source}, {s.base.model.name}; "
            f"selecting by validation {s.metric}{resumed}; space {search.space.describe()} "
            f"({search.space.source}); study folder {search.folder}")
