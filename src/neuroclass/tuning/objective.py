"""One trial of a search: the trial's config, its training run, pruning, and the value it scores.

A trial is an ordinary run (neuroclass.pipeline.train) in the study folder's ``trials/`` folder,
named ``trial-<number>``; what it scores is a validation metric under the run's inference policy
(the test split is never used to select). While it trains, each epoch's validation metric is
reported to Optuna, whose pruner may stop it (Optuna's MedianPruner or SuccessiveHalvingPruner;
Li et al. 2018 for successive halving); a pruned, failed or interrupted trial leaves no run folder.
An interrupted trial is trained again when the search resumes, whatever its family: a torch run
stops with a checkpoint in its partial folder, the glassbox network's (which keeps none) is
finished with its weights so far, and either folder goes.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import optuna
from torch import nn

from neuroclass.config import Config
from neuroclass.errors import NeuroclassError, RunInterrupted
from neuroclass.pipeline import train
from neuroclass.runs.folder import PARTIAL
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.state import TrainState
from neuroclass.tuning.cv import FoldRun, as_discarded, cross_validate, mean_validation_metric
from neuroclass.tuning.rungs import rung_of
from neuroclass.tuning.space import SearchSpace, apply_params, suggest
from neuroclass.tuning.trials import earlier_defaults, is_surplus

# the selection metrics: the per-epoch history column pruning reads, and whether larger is better
METRICS = {"accuracy": ("val_accuracy", True), "balanced_accuracy": ("val_balanced_accuracy", True),
           "macro_f1": ("val_macro_f1", True), "log_loss": ("val_loss", False)}
RUN_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")  # kept per trial


def trial_name(number: int) -> str:
    """The run folder name of trial ``number``: 'trial-0007'."""
    return f"trial-{number:04d}"


PRUNING_STEPS = 20  # a trial reports its validation metric at 20 points of its schedule (each 5%)
PRUNING_WARMUP = 5  # no trial is pruned before a quarter of its schedule


class Pruning(Callback):
    """Report the validation ``metric`` to the Optuna ``trial`` at each epoch's end and raise
    optuna.TrialPruned when the study's pruner says the trial is hopeless (Optuna's
    report/should_prune protocol). For log_loss the history's validation loss is reported.

    The step reported is how far the trial's schedule has gone, in PRUNING_STEPS parts
    (TrainState.progress: steps done over steps planned), not the epoch: trials of one budget with
    different batch sizes run different epochs, and a pruner compares trials at one step. Every
    step passed since the last epoch gets the epoch's value (the metric as known at that point of
    the schedule), so that trials whose epochs end at different points still meet at each step."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.column = METRICS[metric][0]
        self.reported = 0

    def on_epoch_end(self, state: TrainState, model: nn.Module) -> None:
        value = state.history[-1].get(self.column)
        if value is None:
            return
        done = state.step / max(1, state.planned_steps())
        step = max(1, min(PRUNING_STEPS, round(PRUNING_STEPS * done)))
        for point in range(self.reported + 1 if self.reported else step, step + 1):
            self.trial.report(float(value), point)
        self.reported = max(self.reported, step)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_at_epoch", state.epoch)
            raise optuna.TrialPruned(f"pruned at epoch {state.epoch} (validation {self.metric} {value:.4f})")


@dataclass
class TrialPlan:
    """What every trial of a search shares: the config it starts from, the space, the metric,
    where its runs go, its time budget (seconds, None: --epochs decides), and a stop request."""

    base: Config
    space: SearchSpace
    metric: str
    trials_dir: Path
    seconds: Callable[[int], float | None]  # a trial's time budget, asked as it starts, by its rung
    stop: StopRequest | None = None
    clock: Callable[[], float] = time.perf_counter
    command: str = ""
    callbacks: tuple = ()  # the caller's, added to each trial's training (e.g. the CLI's signal phase)
    limit: int | None = None  # --trials: a trial beyond it (workers asking at once) does not train
    cv: int | None = None  # score each trial by k-fold cross-validation


def run_trial(trial: optuna.Trial, plan: TrialPlan) -> float:
    """Train one trial and return its validation metric (Optuna's objective): one run, or with
    ``plan.cv`` a k-fold cross-validation (tuning/cv.py) scored by the folds' mean. The run's path,
    its validation metrics and seconds are stored as the trial's user attributes ("run",
    "val_metrics", "seconds", "epochs"). Raises optuna.TrialPruned when pruned; NeuroclassError
    for a config the trial's values make invalid (the study records it as failed and goes on);
    RunInterrupted when ``plan.stop`` is requested (marked "interrupted", for --resume)."""
    params = suggest(trial, plan.space)
    if plan.limit is not None and is_surplus(trial.study, trial.number, plan.limit):
        trial.set_user_attr("surplus", True)  # another worker asked for the last trial just before
        raise NeuroclassError(f"trial {trial.number} not run: the {plan.limit} trials are done or running")
    first = earlier_defaults(trial.study, trial) if trial.user_attrs.get("defaults") else None
    if first is not None:  # workers that started a shared study together each queued the defaults
        trial.set_user_attr("surplus", True)
        raise NeuroclassError(f"trial {trial.number} not run: trial {first} runs the config's own values")
    rung = rung_of(trial)
    trial.set_user_attr("rung", rung)
    seconds = plan.seconds(rung)
    cfg = apply_params(plan.base, params)
    cfg = replace(cfg, out=str(plan.trials_dir),
                  train=replace(cfg.train, time_budget=seconds, quiet=True, checkpoint_minutes=0.0))
    name = trial_name(trial.number)
    started = plan.clock()
    trial.set_user_attr("time_budget", seconds)
    try:
        path, values, epochs = (_cross_validated if plan.cv else _trained)(trial, plan, cfg, name, started, rung == 0)
    except BaseException as exc:
        if isinstance(exc, (RunInterrupted, KeyboardInterrupt)):
            trial.set_user_attr("interrupted", True)
        stopped = as_discarded(exc)  # a glassbox run finished by the stop: said as a torch run's
        trial.set_user_attr("error", str(stopped).splitlines()[0] if str(stopped) else type(stopped).__name__)
        trial.set_user_attr("seconds", plan.clock() - started)
        remove_unfinished(plan.trials_dir, name)
        if stopped is not exc:
            raise stopped from None
        raise
    if plan.metric not in values:  # no validation split: nothing to select by
        raise optuna.TrialPruned("no validation split to score the trial (set data.val_fraction > 0)")
    trial.set_user_attr("run", str(Path(path).resolve()))  # other workers read it, from other folders
    trial.set_user_attr("val_metrics", {k: values[k] for k in RUN_METRICS if k in values})
    trial.set_user_attr("seconds", plan.clock() - started)
    trial.set_user_attr("epochs", epochs)
    return float(values[plan.metric])


def _trained(trial: optuna.Trial, plan: TrialPlan, cfg: Config, name: str, started: float, prune: bool) -> tuple:
    """One run: (its folder, its validation metrics, its epochs); pruned by the study's pruner
    when ``prune`` (not a promoted trial of a higher rung, whose epochs are not comparable)."""
    pruning = [Pruning(trial, plan.metric)] if prune else []
    result = train(cfg, callbacks=[*pruning, *plan.callbacks], command=plan.command,
                   report=False, stop=plan.stop, clock=plan.clock, started=started, name=name)
    trial.set_user_attr("test_seconds", result.timing.get("test_seconds"))  # an ensemble's reserve
    return result.path, result.val_metrics or {}, result.timing.get("epochs")


def _cross_validated(trial: optuna.Trial, plan: TrialPlan, cfg: Config, name: str, started: float,
                     prune: bool) -> tuple:
    """A k-fold cross-validation: (its summary folder, the folds' mean validation metrics, the
    folds' mean epochs). With ``prune``, after each fold the mean so far is reported to the pruner
    (step = folds done), which may stop the trial between folds."""
    def after_fold(fold: FoldRun) -> None:
        done.append(fold)
        if not prune:
            return
        value = float(np.mean([f.val_metrics[plan.metric] for f in done]))
        trial.report(value, len(done))
        if trial.should_prune():
            trial.set_user_attr("pruned_at_fold", len(done))
            raise optuna.TrialPruned(f"pruned after fold {len(done)} (validation {plan.metric} {value:.4f})")

    done: list[FoldRun] = []
    result = cross_validate(cfg, plan.cv, callbacks=plan.callbacks, command=plan.command, stop=plan.stop,
                            on_fold=after_fold, clock=plan.clock, started=started, name=name)
    values = {k: mean_validation_metric(result, k) for k in RUN_METRICS}
    trial.set_user_attr("test_seconds", sum(f.timing.get("test_seconds") or 0.0 for f in result.folds))
    return result.path, values, float(np.mean([f.timing.get("epochs", 0) for f in result.folds]))


def remove_unfinished(trials_dir: Path, name: str) -> None:
    """A trial that did not finish (failed, pruned or interrupted) leaves no folder: its hidden
    partial run folders go (``.partial-<name>``, ``-2``, ...), and the run folders it was finished
    into (``<name>``, ``<name>-2``, ...): an interrupted glassbox run is finished with its weights
    so far, and the trial is trained again when the search resumes."""
    for pattern in (f"{PARTIAL}{name}", f"{PARTIAL}{name}-*", name, f"{name}-*"):
        for leftover in trials_dir.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
