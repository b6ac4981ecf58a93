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
    p.add_argument("--sampler", choices=["grid", "random", "tpe"],
                   help="grid: exactly the grid; random; tpe: Bayesian (default)")
    p.add_argument("--pruner", choices=["median", "halving", "none"],
                   help="stop hopeless trials from their per-epoch validation metric (default median)")
    p.add_argument("--rungs", type=int, metavar="N",
                   help="successive halving over training time: N rungs, each keeping the best third of the last "
                   "and training it again with 3x the time (default: 3 from about 15 min of budget, 2 from about "
                   "10 min, else 1 = every trial alike; always 1 with --trials, a grid or --storage)")
    p.add_argument("--space", help="YAML file: config keys and their values or ranges (default: the family's)")
    p.add_argument("--metric", choices=["accuracy", "balanced_accuracy", "macro_f1", "log_loss"],
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
                   help="continue an interrupted search: its study folder (default: the newest in --out); it "
                   "takes --time-budget, --trials, --ensemble, --no-report and --quiet, and the search's other "
                   "options only with the values it was started with")
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


# the defaults of the options that a resumed search must not change (None: none); the heartbeat's
# is storage.HEARTBEAT_SECONDS, written out so that building the parser imports no Optuna
DEFAULTS = {"sampler": "tpe", "metric": "accuracy", "pruner": "median", "heartbeat": 10}
# the options that --resume takes only with the values the search was started with: (dest, option)
RECORDED_OPTIONS = (("data", "DATA"), ("model", "--model"), ("space", "--space"), ("config", "--config"),
                    ("set", "--set"), ("label_column", "--label-column"), ("epochs", "--epochs"),
                    ("seed", "--seed"), ("sampler", "--sampler"), ("metric", "--metric"), ("cv", "--cv"),
                    ("pruner", "--pruner"), ("rungs", "--rungs"), ("storage", "--storage"),
                    ("study", "--study"), ("heartbeat", "--heartbeat"))
# of those, the ones tune.json records as settings (the rest are read from its recorded command)
RECORDED_SETTINGS = ("sampler", "metric", "cv", "pruner", "rungs", "storage", "study", "heartbeat")


def cmd_tune(args: argparse.Namespace) -> int:
    from neuroclass.api import build_config
    from neuroclass.interrupts import stop_on_signals
    from neuroclass.tuning.search import SearchInterrupted, tune
    from neuroclass.tuning.settings import TuneSettings

    resume = _resume_folder(args)
    if resume is None and args.data is None:
        raise NeuroclassError("tune needs DATA (e.g. 'neuroclass tune digits --time-budget 10m'), or --resume")
    # with --resume the search's settings are its record (tune.json, config.yaml); _resume_folder
    # refused the options that would change them
    with _made_folders_removed_on_error(Path(args.out or "runs") if resume is None else None):
        cfg = build_config(args.data or "digits", args.model, args.epochs, args.time_budget, args.seed, args.config,
                           args.set, args.out, args.label_column, True)
        chosen = {key: default if getattr(args, key) is None else getattr(args, key)
                  for key, default in DEFAULTS.items()}
        settings = TuneSettings(cfg, space=args.space, trials=args.trials, cv=args.cv, storage=args.storage,
                                study=args.study, ensemble=args.ensemble, rungs=args.rungs,
                                report=not args.no_report, command="neuroclass " + shlex.join(args.argv), **chosen)
        with stop_on_signals(cfg.model.name) as interrupts, _trial_lines_hidden():
            try:
                result = tune(settings, stop=interrupts.stop, resume=resume, started=args.started,
                              callbacks=(interrupts.phase,), show_failures=args.debug)
            except SearchInterrupted as exc:
                print(f"neuroclass: {exc}", file=sys.stderr)
                return interrupts.exit_code()
    _print_result(result, args.ensemble)
    return 0


@contextlib.contextmanager
def _made_folders_removed_on_error(out: Path | None) -> Iterator[None]:
    """The folders of ``out`` that do not exist yet and that the search creates are removed again
    when it fails before leaving anything in them (as train leaves no --out folder behind)."""
    missing = [] if out is None else [folder for folder in (out, *out.parents) if not folder.exists()]
    try:
        yield
    except BaseException:
        for folder in missing:  # the deepest first
            with contextlib.suppress(OSError):  # not empty (a study folder is kept), or gone
                folder.rmdir()
        raise


def _resume_folder(args: argparse.Namespace) -> Path | None:
    """--resume FOLDER, or the newest study folder in --out for --resume alone; None without.
    NeuroclassError when an option would change the search's recorded settings."""
    if args.resume is None:
        return None
    if args.resume:
        folder = Path(args.resume)
    else:
        out = Path(args.out or "runs")
        studies = sorted(out.glob("tune-*/tune.json"), key=lambda p: p.stat().st_mtime)
        if not studies:
            raise NeuroclassError(f"--resume: no study folder (tune-*) in '{out}'; give the folder tune printed")
        folder = studies[-1].parent
    changed = _changed_settings(args, folder)
    if changed:
        raise NeuroclassError("--resume continues the search with its recorded settings; drop "
                              + ", ".join(changed))
    return folder


def _changed_settings(args: argparse.Namespace, folder: Path) -> list[str]:
    """The options of ``args`` that differ from what the study in ``folder`` was started with
    (tune.json: its settings and its command), each as 'OPTION (recorded: VALUE)'; an option given
    with the recorded value is no change. Without a readable tune.json: none (the search then
    says that ``folder`` is not a study folder)."""
    import json

    try:
        record = json.loads((folder / "tune.json").read_text())
        recorded = _parse_recorded(record["command"])
    except (OSError, ValueError, KeyError, SystemExit):
        return []
    changed = []
    for dest, option in RECORDED_OPTIONS:
        given = getattr(args, dest)
        if given is None or given == []:
            continue
        was = record[dest] if dest in RECORDED_SETTINGS and dest in record else getattr(recorded, dest)
        was = DEFAULTS.get(dest) if was is None else was
        if given != was:
            shown = "not given" if was in (None, []) else " ".join(map(str, was)) if dest == "set" else was
            changed.append(f"{option} (recorded: {shown})")
    return changed


def _parse_recorded(command: str) -> argparse.Namespace:
    """The options of a recorded tune command ('neuroclass tune DATA ...'), parsed as now."""
    parser = argparse.ArgumentParser(prog="neuroclass", add_help=False)
    add_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_known_args(shlex.split(command)[1:])[0]


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


def _print_result(result, ensemble: int | None) -> None:
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
        print(_ensemble_line(result, ensemble))


def _ensemble_line(result, wanted: int | None) -> str:
    """'ensemble of the top 2 trials (--ensemble 5, but 2 finished here): FOLDER'; ``wanted``: the
    --ensemble given (None: the study's recorded one)."""
    import json

    held = len(json.loads((result.ensemble / "ensemble.json").read_text())["members"])
    wanted = wanted or json.loads((result.folder / "tune.json").read_text()).get("ensemble") or held
    fewer = f" (--ensemble {wanted}, but {held} finished here)" if held < wanted else ""
    return f"ensemble of the top {counted(held, 'trial')}{fewer}: {result.ensemble}"


# the options of a tune command that train takes with the same meaning
TRAIN_OPTIONS = (("model", "--model"), ("config", "--config"), ("label_column", "--label-column"),
                 ("epochs", "--epochs"), ("seed", "--seed"), ("time_budget", "--time-budget"), ("out", "--out"))


def retrain_command(result, best: dict) -> list[str]:
    """The words of `neuroclass train` that retrain the best trial's values on the whole training
    data (tuning.refit.retrain_values), with the data and train's options of the study's recorded
    tune command (tune.json), and the same budget as the search."""
    import json

    from neuroclass.tuning.refit import retrain_values

    given = _parse_recorded(json.loads((result.folder / "tune.json").read_text())["command"])
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
