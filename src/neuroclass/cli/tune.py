"""`neuroclass tune`: a hyperparameter search (Optuna) whose trials are ordinary runs."""
from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import sys
from pathlib import Path
from typing import Iterator

from neuroclass.cli.common import add_common, add_config_options
from neuroclass.errors import NeuroclassError, counted

# the loggers whose INFO lines each trial's run would print; the search's own lines stay
TRIAL_LOGGERS = ("neuroclass.pipeline", "neuroclass.training", "neuroclass.models", "neuroclass.data",
                 "neuroclass.evaluation", "neuroclass.inference")


def add_parsers(sub) -> None:
    p = sub.add_parser("tune", help="search hyperparameters (grid, random, TPE) with trials as run folders")
    p.add_argument("data", metavar="DATA", nargs="?", help="data, as for train")
    p.add_argument("--model", help="model family (default: the data's: cnn for images, mlp for tables)")
    p.add_argument("--time-budget", help="wall-clock limit for the whole search, e.g. 30m")
    p.add_argument("--trials", type=int, help="finished trials that end the search")
    p.add_argument("--sampler", default="tpe", choices=["grid", "random", "tpe"],
                   help="grid: exactly the grid; random; tpe: Bayesian (default)")
    p.add_argument("--pruner", default="median", choices=["median", "halving", "none"],
                   help="stop hopeless trials from their per-epoch validation metric (default median)")
    p.add_argument("--rungs", type=int, metavar="N",
                   help="successive halving over training time: N rungs, each keeping the best third of the last "
                   "and training it again with 3x the time (default: 3 from about 15 min of budget, 2 from about "
                   "10 min, else 1 = every trial alike; always 1 with --trials, a grid or --storage)")
    p.add_argument("--space", help="YAML file: config keys and their values or ranges (default: the family's)")
    p.add_argument("--metric", default="accuracy", choices=["accuracy", "balanced_accuracy", "macro_f1", "log_loss"],
                   help="validation metric that selects (default accuracy)")
    p.add_argument("--cv", type=int, metavar="K", help="score each trial by stratified K-fold cross-validation")
    p.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://user@host/db (default: SQLite "
                   "study.db in the study folder); workers with the same --storage and --study share the study")
    p.add_argument("--study", help="study name in the storage (default: the study folder's name)")
    # the numbers are storage.HEARTBEAT_SECONDS and search.GRACE_HEARTBEATS, written out so that
    # building the parser imports no Optuna (a unit test keeps them equal)
    p.add_argument("--heartbeat", type=int, metavar="SECONDS",
                   help="how often a worker tells the storage that it is alive (default 10 s); a worker silent "
                   "for 3 heartbeats is taken as dead and its running trial is run again by another worker")
    p.add_argument("--resume", nargs="?", const="", metavar="FOLDER",
                   help="continue an interrupted search: its study folder (default: the newest in --out)")
    p.add_argument("--ensemble", type=int, metavar="K", help="also build an ensemble of the top K trials")
    p.add_argument("--epochs", type=int, help="epochs of each trial (default: its time budget decides)")
    p.add_argument("--seed", type=int, help="random seed of the trials and the sampler")
    add_config_options(p)
    p.add_argument("--out", help="folder for the study folder (default runs/)")
    p.add_argument("--label-column", help="label column of a CSV/Parquet table")
    p.add_argument("--no-report", action="store_true",
                   help="do not write the best run's report.html (the study's report.html is written)")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines")
    add_common(p)


def cmd_tune(args: argparse.Namespace) -> int:
    from neuroclass.api import build_config
    from neuroclass.interrupts import stop_on_signals
    from neuroclass.tuning.search import SearchInterrupted, tune
    from neuroclass.tuning.settings import TuneSettings
    from neuroclass.tuning.storage import HEARTBEAT_SECONDS

    resume = _resume_folder(args)
    if resume is None and args.data is None:
        raise NeuroclassError("tune needs DATA (e.g. 'neuroclass tune digits --time-budget 10m'), or --resume")
    # with --resume only --time-budget and --trials count: the rest is the study's record
    cfg = build_config(args.data or "digits", args.model, args.epochs, args.time_budget, args.seed, args.config,
                       args.set, args.out, args.label_column, True)
    heartbeat = HEARTBEAT_SECONDS if args.heartbeat is None else args.heartbeat
    settings = TuneSettings(cfg, space=args.space, trials=args.trials, sampler=args.sampler, metric=args.metric,
                            pruner=args.pruner, cv=args.cv, storage=args.storage, study=args.study,
                            ensemble=args.ensemble, heartbeat=heartbeat, rungs=args.rungs,
                            report=not args.no_report, command="neuroclass " + shlex.join(args.argv))
    with stop_on_signals(cfg.model.name) as interrupts, _trial_lines_hidden():
        try:
            result = tune(settings, stop=interrupts.stop, resume=resume, started=args.started,
                          callbacks=(interrupts.phase,))
        except SearchInterrupted as exc:
            print(f"neuroclass: {exc}", file=sys.stderr)
            return interrupts.exit_code()
    _print_result(result)
    return 0


def _resume_folder(args: argparse.Namespace) -> Path | None:
    """--resume FOLDER, or the newest study folder in --out for --resume alone; None without."""
    if args.resume is None:
        return None
    given = [flag for flag, value in (("DATA", args.data), ("--model", args.model), ("--space", args.space),
                                      ("--config", args.config), ("--set", args.set)) if value]
    if given:
        raise NeuroclassError(f"--resume continues the search with its recorded settings; drop {', '.join(given)}")
    if args.resume:
        return Path(args.resume)
    out = Path(args.out or "runs")
    studies = sorted(out.glob("tune-*/tune.json"), key=lambda p: p.stat().st_mtime)
    if not studies:
        raise NeuroclassError(f"--resume: no study folder (tune-*) in '{out}'; give the folder tune printed")
    return studies[-1].parent


@contextlib.contextmanager
def _trial_lines_hidden() -> Iterator[None]:
    """Each trial's own INFO lines (what its budget chose) and Optuna's hidden; the search's lines shown."""
    import optuna

    loggers = [logging.getLogger(name) for name in TRIAL_LOGGERS]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    optuna.logging.disable_default_handler()  # Optuna's own "[I ...] Trial 3 finished" lines: ours say it
    try:
        yield
    finally:
        optuna.logging.enable_default_handler()
        for logger, level in zip(loggers, before):
            logger.setLevel(level)


def _print_result(result) -> None:
    done = [r for r in result.rows if r["state"] in ("complete", "pruned")]
    best = next((r for r in result.rows if r["state"] == "complete"), None)
    if best is None:
        print(f"no trial finished ({len(result.rows):,} tried); see {result.folder / 'leaderboard.csv'}")
    elif result.best is None:  # run by another worker of a shared study, on another machine
        print(f"best trial {best['trial']}: validation {_metric(result)} {best['value']:.4f} "
              f"({counted(len(done), 'trial')} done)")
        print(f"best run: {best['run']} is not on this machine (another worker's?): no 'best' link and no test "
              "metrics here")
    else:
        test = best["test"] or {}
        rung = f" (rung {best['rung']})" if best.get("rung") else ""
        print(f"best trial {best['trial']}{rung}: validation {_metric(result)} {best['value']:.4f}, test accuracy "
              f"{test.get('accuracy', float('nan')):.4f} ({counted(len(done), 'trial')} done)")
        print(f"best run: {result.folder / 'best'} -> {best['run']}")
        print("retrain the best values on all the training data: " + shlex.join(retrain_command(result, best)))
    print(f"leaderboard: {result.folder / 'leaderboard.csv'}")
    if result.report is not None:
        print(f"report: {result.report}")
    if result.ensemble is not None:
        print(f"ensemble: {result.ensemble}")


# the options of a tune command that train takes with the same meaning
TRAIN_OPTIONS = (("model", "--model"), ("config", "--config"), ("label_column", "--label-column"),
                 ("epochs", "--epochs"), ("seed", "--seed"), ("time_budget", "--time-budget"), ("out", "--out"))


def retrain_command(result, best: dict) -> list[str]:
    """The words of `neuroclass train` that retrain the best trial's values on the whole training
    data (tuning.refit.retrain_values), with the data and train's options of the study's recorded
    tune command (tune.json), and the same budget as the search."""
    import json

    from neuroclass.tuning.refit import retrain_values

    recorded = shlex.split(json.loads((result.folder / "tune.json").read_text())["command"])[1:]
    parser = argparse.ArgumentParser(prog="neuroclass", add_help=False)
    add_parsers(parser.add_subparsers(dest="command"))
    given = parser.parse_known_args(recorded)[0]
    words = ["neuroclass", "train", given.data]
    for field, option in TRAIN_OPTIONS:
        if getattr(given, field) is not None:
            words += [option, str(getattr(given, field))]
    values = retrain_values(result.folder / best["run"], best["params"])
    sets = [*given.set, *(f"{key}={_word(value)}" for key, value in values.items())]
    return words + [word for value in sets for word in ("--set", value)]


def _word(value) -> str:
    """A --set value as --set reads it back (config.parse_override: a YAML scalar): a string as it
    is unless YAML would read it as something else ("yes", "1e-3"), then quoted."""
    import json

    from neuroclass.config import parse_override

    if isinstance(value, str) and parse_override(f"k={value}")[1] == value:
        return value
    return json.dumps(value)


def _metric(result) -> str:
    import json

    return json.loads((result.folder / "leaderboard.json").read_text())["metric"]


COMMANDS = {"tune": cmd_tune}
