"""`neuroclass train`: a new run, or --resume of an interrupted one."""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys

from neuroclass.cli.common import add_common, add_config_options
from neuroclass.errors import NeuroclassError, counted


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train a classifier on DATA and write a run folder")
    p.add_argument("data", metavar="DATA", nargs="?", help="built-in name (fashion-mnist, mnist, digits, "
                   "blocks), a folder of IDX files or of class sub-folders, a .csv/.parquet table or an .npz")
    p.add_argument("--resume", metavar="PATH",
                   help="continue an interrupted run: its hidden .partial-* folder, or the --out folder "
                        "(its newest interrupted run); with the run's recorded config")
    p.add_argument("--model", help="model family (see `neuroclass models`)")
    p.add_argument("--epochs", type=int, help="number of passes over the training data")
    p.add_argument("--time-budget", help="wall-clock limit for the whole run, e.g. 90s, 5m, 1h")
    p.add_argument("--seed", type=int, help="random seed (same seed, same machine: same metrics)")
    add_config_options(p)
    p.add_argument("--out", help="folder for run folders (default runs/)")
    p.add_argument("--label-column", help="label column of a CSV/Parquet table")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (pays back its compile time only on long runs)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html into the run folder")
    p.add_argument("--cv", type=int, metavar="K",
                   help="stratified K-fold cross-validation: K runs (one per fold, same test split) and a "
                        "summary folder with the mean +- std of the validation metrics and the fold "
                        "ensemble's test metrics; a time budget is shared by the folds")
    p.add_argument("--pretrained", action="store_true",
                   help="tv:ARCH models: start from torchvision's ImageNet weights (torch hub cache)")
    p.add_argument("--weights", metavar="PATH", help="start from a .safetensors or state-dict file")
    p.add_argument("--from", dest="from_run", metavar="RUN",
                   help="start from an earlier run's model (its family and options; new head if the "
                        "classes differ)")
    p.add_argument("--freeze", action="store_true",
                   help="with --pretrained/--weights/--from: train only the head (feature extractor)")
    add_common(p)



# options that set up a new run; --resume continues one with its recorded config instead
NEW_RUN_OPTIONS = {"data": "DATA", "model": "--model", "epochs": "--epochs", "time_budget": "--time-budget",
                   "seed": "--seed", "config": "--config", "set": "--set", "out": "--out", "label_column":
                   "--label-column", "compile": "--compile", "pretrained": "--pretrained", "weights": "--weights",
                   "from_run": "--from", "freeze": "--freeze"}


def _check_resume_args(args: argparse.Namespace) -> None:
    """--resume takes no option that sets up a run (the run's own config continues); a new run
    needs DATA."""
    if args.cv is not None and args.resume is not None:
        raise NeuroclassError("--cv trains K new runs and cannot --resume; drop --resume to run the "
                              "cross-validation again, or --cv to continue one interrupted run")
    if args.resume is None:
        if args.data is None:
            raise NeuroclassError("train needs DATA (e.g. 'neuroclass train digits'), or --resume PATH "
                                  "to continue an interrupted run")
        return
    given = [flag for name, flag in NEW_RUN_OPTIONS.items() if getattr(args, name)]
    if given:
        raise NeuroclassError(f"--resume continues the run with its recorded config; drop {', '.join(given)}")


def cmd_train(args: argparse.Namespace) -> int:
    from neuroclass.api import build_config
    from neuroclass.interrupts import stop_on_signals
    from neuroclass.pipeline import RunInterrupted, resume, train
    from neuroclass.training.callbacks import Progress
    from neuroclass.training.state import StopReason

    _check_resume_args(args)
    if args.cv is not None:
        from neuroclass.tuning.cv import check_folds

        check_folds(args.cv)  # before the config and the data: a bad K fails at once
    if args.resume is None:
        overrides = (["train.compile=true"] if args.compile else []) + _transfer_overrides(args) + args.set
        cfg = build_config(args.data, args.model, args.epochs, args.time_budget, args.seed, args.config,
                           overrides, args.out, args.label_column, True if args.quiet else None)
        if cfg.train.quiet:  # also from --config or --set train.quiet=true; main() restores the level
            logging.getLogger("neuroclass").setLevel(logging.WARNING)
    if args.cv is not None:
        return _cross_validate(args, cfg)
    with stop_on_signals(None if args.resume is not None else cfg.model.name) as interrupts:
        try:
            if args.resume is not None:  # quiet: --quiet, or the run's recorded train.quiet
                result = resume(args.resume, callbacks=[interrupts.phase], report=not args.no_report,
                                stop=interrupts.stop, quiet=True if args.quiet else None,
                                progress=lambda: Progress(sys.stderr), before_rename=args.before_rename,
                                started=args.started)
            else:
                progress = [] if cfg.train.quiet else [Progress(sys.stderr)]
                result = train(cfg, callbacks=[interrupts.phase, *progress], report=not args.no_report,
                               command="neuroclass " + shlex.join(args.argv), stop=interrupts.stop,
                               before_rename=args.before_rename, started=args.started)
        except (RunInterrupted, KeyboardInterrupt) as exc:  # KeyboardInterrupt: nothing to resume yet
            print(_interrupted_line(exc), file=sys.stderr)
            return interrupts.exit_code()
    t = result.timing
    if "classical" in t:  # fitted, not trained by epochs
        rounds = t["classical"].get("rounds")
        done = f"{t['classical']['family']}: " + (f"{counted(rounds, 'round')}, " if rounds else "") + \
            f"{t['train_seconds']:.1f}s fitting"
    else:
        done = (f"{t['epochs']} epoch{'' if t['epochs'] == 1 else 's'}, {t['train_seconds']:.1f}s training, "
                f"{t['train_examples_per_second']:.0f} examples/s")
    print(f"test accuracy {result.metrics['accuracy']:.4f}  macro F1 {result.metrics['macro_f1']:.4f}  ({done})")
    if t["stop_reason"] != StopReason.COMPLETED.value:
        print(f"stopped: {t['stop_detail']}")
    print(f"run folder: {result.path}")
    if result.report is not None:
        from neuroclass.evaluation.report import budget_lines

        print(f"report: {result.report}")
        if lines := budget_lines(result.report):  # what the time budget left out
            print(f"report, to end within the time budget: {'; '.join(lines)} (neuroclass report "
                  f"{shlex.quote(str(result.path))} writes every analysis in full)")
    return 0


def _cross_validate(args: argparse.Namespace, cfg) -> int:
    """`train --cv K`: the fold runs (a line each as it ends), then one summary line. The fold runs
    are written without reports (`neuroclass report FOLD_RUN` writes one)."""
    from neuroclass.interrupts import stop_on_signals
    from neuroclass.pipeline import RunInterrupted
    from neuroclass.training.callbacks import Progress
    from neuroclass.tuning.cv import cross_validate

    progress = [] if cfg.train.quiet else [Progress(sys.stderr)]
    with stop_on_signals(cfg.model.name) as interrupts:
        try:
            result = cross_validate(cfg, args.cv, callbacks=[interrupts.phase, *progress],
                                    command="neuroclass " + shlex.join(args.argv), stop=interrupts.stop,
                                    on_fold=lambda fold: print(_fold_line(fold, args.cv), flush=True),
                                    started=args.started)
        except (RunInterrupted, KeyboardInterrupt) as exc:
            detail = getattr(exc, "detail", None) or "interrupted"
            print(f"neuroclass: {detail}; the cross-validation was not finished and nothing of it "
                  "was kept (its folds cannot be resumed)", file=sys.stderr)
            return interrupts.exit_code()
    print(_summary_line(result.summary, args.cv, result.path))
    return 0


def _fold_line(fold, k: int) -> str:
    """One fold's validation metrics, as the fold ends."""
    m, t = fold.val_metrics, fold.timing
    return (f"fold {fold.fold}/{k}: validation accuracy {m['accuracy']:.3f}  macro F1 {m['macro_f1']:.3f}  "
            f"log loss {m['log_loss']:.3f}  ({t['epochs']} epoch{'' if t['epochs'] == 1 else 's'}, "
            f"{t['train_seconds']:.1f}s training)")


def _summary_line(summary: dict, k: int, path) -> str:
    """cv K folds: the validation metrics' mean +- std, the fold ensemble's test accuracy, the folder."""
    m, test = summary["metrics"], summary["fold_ensemble_test_metrics"]
    said = ", ".join(f"{label} {m[name]['mean']:.3f} +- {m[name]['std']:.3f}" for name, label in
                     (("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("log_loss", "log loss")))
    return (f"cv {k} folds: {said}; fold ensemble test accuracy {test['accuracy']:.3f}, macro F1 "
            f"{test['macro_f1']:.3f}; summary folder: {path}")


def _interrupted_line(exc: BaseException) -> str:
    """What a stopped `train` says: the command that resumes it, or where the finished run is."""
    from neuroclass.errors import StoppedBeforeCheckpoint

    if isinstance(exc, StoppedBeforeCheckpoint):  # the run's partial folder is removed
        return f"neuroclass: {exc}: nothing was saved (no checkpoint yet)"
    path = getattr(exc, "path", None)
    if path is None:
        return "neuroclass: interrupted"
    if exc.finished:
        return (f"neuroclass: {exc.detail}; the run had finished: {path} (to write its report: "
                f"neuroclass report {shlex.quote(str(path))})")
    return f"neuroclass: {exc.detail}; resume with: neuroclass train --resume {shlex.quote(str(path))}"


def _transfer_overrides(args: argparse.Namespace) -> list[str]:
    """--pretrained / --weights / --from / --freeze as config overrides (paths JSON-quoted, which
    YAML reads back as the same string)."""
    out = ["model.pretrained=true"] if args.pretrained else []
    out += [f"model.weights={json.dumps(args.weights)}"] if args.weights else []
    out += [f"model.from_run={json.dumps(args.from_run)}"] if args.from_run else []
    return out + (["train.freeze=true"] if args.freeze else [])



COMMANDS = {"train": cmd_train}
