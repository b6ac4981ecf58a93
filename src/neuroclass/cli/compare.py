"""`neuroclass compare`: model families side by side on the same split (or folds) of one data set."""
from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import sys
from typing import Iterator

from neuroclass.cli.common import add_common, add_config_options
from neuroclass.cli.tune import TRIAL_LOGGERS


def add_parsers(sub) -> None:
    p = sub.add_parser("compare", help="train several model families on the same split and rank them")
    p.add_argument("data", metavar="DATA", help="data, as for train")
    p.add_argument("--models", required=True, metavar="ENTRIES",
                   help="comma-separated families, e.g. mlp,cnn,xgboost,svm+hog: FAMILY[KEY=VALUE,...]+FEATURES, "
                        "with model.options in brackets (svm[kernel=linear]) and, for images and a classical "
                        "family, hog, lbp or hog+lbp features")
    p.add_argument("--cv", type=int, metavar="K", help="score each entry by stratified K-fold cross-validation")
    p.add_argument("--time-budget", help="wall-clock limit for the whole comparison, e.g. 20m; each entry gets "
                   "the time left divided by the entries left")
    p.add_argument("--metric", default="accuracy", choices=["accuracy", "balanced_accuracy", "macro_f1", "log_loss"],
                   help="validation metric that ranks the entries (default accuracy)")
    p.add_argument("--seed", type=int, help="random seed of every entry (the same split for all)")
    add_config_options(p)
    p.add_argument("--out", help="folder for the comparison folder (default runs/)")
    p.add_argument("--label-column", help="label column of a CSV/Parquet table")
    p.add_argument("--no-report", action="store_true",
                   help="no report.html in each entry's run folder (the comparison's report.html is written)")
    p.add_argument("--quiet", action="store_true", help="no per-entry lines")
    add_common(p)


def cmd_compare(args: argparse.Namespace) -> int:
    from neuroclass.api import build_config
    from neuroclass.config import given_keys
    from neuroclass.errors import RunInterrupted
    from neuroclass.interrupts import stop_on_signals
    from neuroclass.tuning.compare import CompareSettings, compare
    from neuroclass.tuning.compare_entries import parse_entries

    entries = parse_entries(args.models)  # before the config and the data: a typo fails at once
    cfg = build_config(args.data, None, None, args.time_budget, args.seed, args.config, args.set, args.out,
                       args.label_column, True)
    settings = CompareSettings(cfg, entries, cv=args.cv, metric=args.metric, report=not args.no_report,
                               command="neuroclass " + shlex.join(args.argv),
                               given=frozenset(given_keys(args.config, args.set)))
    quiet = args.quiet
    with stop_on_signals() as interrupts, _entry_lines_hidden():
        try:
            result = compare(settings, stop=interrupts.stop, callbacks=(interrupts.phase,), started=args.started,
                             on_entry=None if quiet else lambda row: print(entry_line(row, args.metric), flush=True))
        except (RunInterrupted, KeyboardInterrupt) as exc:
            detail = getattr(exc, "detail", None) or "interrupted"
            print(f"neuroclass: {detail}; the comparison stopped (the finished entries are in its "
                  "leaderboard.csv)", file=sys.stderr)
            return interrupts.exit_code()
    _print_result(result, args.metric)
    return 0


def entry_line(row: dict, metric: str) -> str:
    """One entry's result as it ends: its validation metric and test accuracy, or its error."""
    if row["error"]:
        return f"{row['entry']}: failed: {row['error']}"
    val = "n/a" if row["val"] is None else f"{row['val']:.4f}" + (f" +- {row['val_std']:.4f}" if row["val_std"]
                                                                 is not None else "")
    return (f"{row['entry']}: validation {metric} {val}, test accuracy {row['test_accuracy']:.4f} "
            f"({row['train_seconds'] or 0.0:.1f}s training)")


def _print_result(result, metric: str) -> None:
    best = next(r for r in result.rows if not r["error"])
    print(f"best: {best['entry']} (validation {metric} "
          f"{'n/a' if best['val'] is None else format(best['val'], '.4f')}, test accuracy "
          f"{best['test_accuracy']:.4f}); {sum(not r['error'] for r in result.rows)} of {len(result.rows)} "
          "entries finished")
    print(f"best run: {result.folder / 'best'} -> {best['run']}")
    print(f"leaderboard: {result.folder / 'leaderboard.csv'}")
    if result.report is not None:
        print(f"report: {result.report}")


@contextlib.contextmanager
def _entry_lines_hidden() -> Iterator[None]:
    """Each entry's own INFO lines (what its budget chose) hidden while the comparison runs (each
    warning shows once: console.log_lines)."""
    loggers = [logging.getLogger(name) for name in TRIAL_LOGGERS]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, before):
            logger.setLevel(level)


COMMANDS = {"compare": cmd_compare}
