"""`neuroclass ensemble`: finished runs combined into an ensemble folder that predict, evaluate and
report take like any run folder."""
from __future__ import annotations

import argparse
import math
import shlex

from neuroclass.cli.common import add_common, report_after
from neuroclass.errors import NeuroclassError

METHODS = ("mean", "vote", "stacking")  # as runs.METHODS; listed here so that --help loads no library
ONE_MEMBER = {  # the line printed for an ensemble of one run: what it then is
    "mean": "one member: the ensemble equals its member (the same probabilities and predictions)",
    "vote": "one member: the ensemble predicts its member's top class (probability 1), as the member does",
    "stacking": "one member: the stacker recalibrates its member's probabilities; nothing is combined"}


def add_parsers(sub) -> None:
    p = sub.add_parser("ensemble", help="combine finished runs into one ensemble folder (mean, vote or stacking)")
    p.add_argument("runs", metavar="RUN", nargs="+",
                   help="finished run folders trained on the same data and split (for stacking: "
                        "cross-validation summary folders from 'train --cv K')")
    p.add_argument("--method", choices=METHODS, default="mean",
                   help="mean: weighted mean of the members' probabilities (default); vote: weighted "
                        "votes for each member's top class; stacking: a logistic regression fitted on "
                        "the members' out-of-fold probabilities")
    p.add_argument("--weights", metavar="W1,W2,...",
                   help="one weight >= 0 per member, e.g. 2,1 (default: all 1; not for stacking)")
    p.add_argument("--copy", action="store_true",
                   help="copy the members into the ensemble folder (default: refer to them where they are)")
    p.add_argument("--out", help="folder to put the ensemble folder in (default: the first member's folder)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html into the ensemble folder")
    add_common(p)


def weight_list(text: str | None) -> list[float] | None:
    """--weights as numbers (None when not given); NeuroclassError for anything else.

    >>> weight_list("2,1,0.5")
    [2.0, 1.0, 0.5]
    """
    if text is None:
        return None
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        raise NeuroclassError(f"--weights '{text}': not a comma-separated list of numbers; give one "
                              "weight per member, e.g. --weights 2,1") from None
    if not all(math.isfinite(w) for w in weights):
        raise NeuroclassError(f"--weights '{text}': weights must be finite numbers >= 0, e.g. --weights 2,1")
    return weights


def cmd_ensemble(args: argparse.Namespace) -> int:
    from neuroclass.tuning.ensemble import build_ensemble, ensemble_summary

    path = build_ensemble(args.runs, args.method, weight_list(args.weights), args.copy, args.out,
                          command="neuroclass " + shlex.join(args.argv))
    print(ensemble_summary(path))
    if len(args.runs) == 1:
        print(ONE_MEMBER[args.method])
    print(f"ensemble folder: {path}")
    if not args.no_report:
        report_after(path)
    return 0


COMMANDS = {"ensemble": cmd_ensemble}
