"""The `neuroclass` command: parses arguments, builds a config, calls the library, prints.

Bad input ends with one line "neuroclass: error: ..." and exit code 2 (a traceback with --debug).
The library's INFO log records (the "neuroclass" loggers: what a time budget chose, downloads)
print as plain lines on stdout, unless --quiet; warnings as "neuroclass: warning: ..." on stderr.
main() leaves the logging and warnings set-up of the process as it found it.

While `train` runs, Ctrl-C (SIGINT), SIGTERM or SIGHUP asks training to stop after the current
step (neuroclass/interrupts.py): the run's checkpoint is written, one line gives the command that
resumes it, and the exit code is 130 (143 for SIGTERM, 129 for SIGHUP). A second Ctrl-C stops at
once.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Callable

from neuroclass import __version__
from neuroclass.console import log_lines
from neuroclass.errors import NeuroclassError

EXIT_BAD_INPUT = 2


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def _train_parser(sub) -> None:
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
    p.add_argument("--config", help="YAML config file (e.g. a run's config.yaml to replay it)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value; repeatable")
    p.add_argument("--out", help="folder for run folders (default runs/)")
    p.add_argument("--label-column", help="label column of a CSV/Parquet table")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (pays back its compile time only on long runs)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html into the run folder")
    p.add_argument("--pretrained", action="store_true",
                   help="tv:ARCH models: start from torchvision's ImageNet weights (torch hub cache)")
    p.add_argument("--weights", metavar="PATH", help="start from a .safetensors or state-dict file")
    p.add_argument("--from", dest="from_run", metavar="RUN",
                   help="start from an earlier run's model (its family and options; new head if the "
                        "classes differ)")
    p.add_argument("--freeze", action="store_true",
                   help="with --pretrained/--weights/--from: train only the head (feature extractor)")
    _add_common(p)


def _run_parsers(sub) -> None:
    """Commands that take a finished run folder: evaluate, predict, report, embed."""
    p = sub.add_parser("evaluate", help="metrics of a run on its test split or on other data")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("--data", help="evaluate on this data instead of the run's test split")
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.html (report-<data>.html with --data) into the run folder")
    _add_common(p)

    p = sub.add_parser("predict", help="predict the class of image files or CSV rows")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("files", metavar="FILE", nargs="+", help="PNG/JPEG images, or a CSV/Parquet of rows")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to list (default 3)")
    p.add_argument("--abstain-below", type=float, metavar="P",
                   help="answer 'not sure' when the top probability is below P (see the report's "
                        "abstention section)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    _add_common(p)

    p = sub.add_parser("report", help="write the run's report: one self-contained HTML page + report.json")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("--data", help="evaluate on this data instead of the run's test split "
                   "(default file name report-<data>.html)")
    p.add_argument("--out", help="HTML file or folder to write to (default: the run folder; "
                   "report.json goes beside it)")
    _add_common(p)

    p = sub.add_parser("embed", help="features from the layer before the head, saved as .npz")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("data", metavar="DATA", nargs="?", help="data to embed (default: the run's data)")
    p.add_argument("--out", required=True, help="output .npz (features, labels, classes)")
    _add_common(p)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuroclass", description=
                                     "Train, evaluate and use neural-network classifiers.")
    parser.add_argument("--version", action="version", version=f"neuroclass {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _train_parser(sub)

    _run_parsers(sub)

    p = sub.add_parser("bench", help="examples/s, GFLOP/s against the matmul peak, time to an accuracy")
    p.add_argument("data", metavar="DATA", nargs="?", default="fashion-mnist",
                   help="data to measure on (default fashion-mnist)")
    p.add_argument("--model", help="model family (default: the config's)")
    p.add_argument("--target", type=float, help="also train until this test accuracy, e.g. 0.91")
    p.add_argument("--max-time", default="10m", help="training time limit with --target (default 10m)")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value; repeatable")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")
    _add_common(p)

    p = sub.add_parser("lr-find", help="the learning-rate range test: a plot and a suggested optim.lr")
    p.add_argument("data", metavar="DATA", help="data, as for train")
    p.add_argument("--model", help="model family (default: auto)")
    p.add_argument("--steps", type=int, default=100, help="steps of the sweep (default 100)")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value; repeatable")
    p.add_argument("--out", help="folder for the sweep's folder (default runs/)")
    _add_common(p)

    p = sub.add_parser("datasets", help="list built-in datasets")
    _add_common(p)
    p = sub.add_parser("models", help="list registered model families and their options")
    _add_common(p)

    p = sub.add_parser("data", help="dataset files: `neuroclass data get fashion-mnist`")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    g = data_sub.add_parser("get", help="download a dataset's official files (checksums verified)")
    g.add_argument("name", choices=["fashion-mnist", "mnist"])
    g.add_argument("--dir", help="destination folder (default $NEUROCLASS_DATA or ~/.cache/neuroclass)")
    _add_common(g)
    return parser


# options that set up a new run; --resume continues one with its recorded config instead
NEW_RUN_OPTIONS = {"data": "DATA", "model": "--model", "epochs": "--epochs", "time_budget": "--time-budget",
                   "seed": "--seed", "config": "--config", "set": "--set", "out": "--out", "label_column":
                   "--label-column", "compile": "--compile", "pretrained": "--pretrained", "weights": "--weights",
                   "from_run": "--from", "freeze": "--freeze"}


def _check_resume_args(args: argparse.Namespace) -> None:
    """--resume takes no option that sets up a run (the run's own config continues); a new run
    needs DATA."""
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
    if args.resume is None:
        overrides = (["train.compile=true"] if args.compile else []) + _transfer_overrides(args) + args.set
        cfg = build_config(args.data, args.model, args.epochs, args.time_budget, args.seed, args.config,
                           overrides, args.out, args.label_column, True if args.quiet else None)
        if cfg.train.quiet:  # also from --config or --set train.quiet=true; main() restores the level
            logging.getLogger("neuroclass").setLevel(logging.WARNING)
    with stop_on_signals() as interrupts:
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
    print(f"test accuracy {result.metrics['accuracy']:.4f}  macro F1 {result.metrics['macro_f1']:.4f}  "
          f"({t['epochs']} epoch{'' if t['epochs'] == 1 else 's'}, {t['train_seconds']:.1f}s training, "
          f"{t['train_examples_per_second']:.0f} examples/s)")
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


def _report_after(run, data: str | None = None, stream=None) -> None:
    """Write the report after a finished train/evaluate; a failure is one warning, never an error
    (report.html in the run folder, or report-<data>.html for an evaluation on --data)."""
    from neuroclass.evaluation.report import try_write_report

    path = try_write_report(run, data)
    if path is not None:
        print(f"report: {path}", file=stream or sys.stdout)


def cmd_report(args: argparse.Namespace) -> int:
    from neuroclass.evaluation.report import write_report

    print(f"report: {write_report(args.run, args.data, args.out)}")
    return 0


def _transfer_overrides(args: argparse.Namespace) -> list[str]:
    """--pretrained / --weights / --from / --freeze as config overrides (paths JSON-quoted, which
    YAML reads back as the same string)."""
    out = ["model.pretrained=true"] if args.pretrained else []
    out += [f"model.weights={json.dumps(args.weights)}"] if args.weights else []
    out += [f"model.from_run={json.dumps(args.from_run)}"] if args.from_run else []
    return out + (["train.freeze=true"] if args.freeze else [])


def cmd_embed(args: argparse.Namespace) -> int:
    from neuroclass.evaluation.embed import embed_run, save_embedding

    emb = embed_run(args.run, args.data)
    path = save_embedding(args.out, emb)
    print(f"features {emb.features.shape[0]} x {emb.features.shape[1]} of {emb.source} -> {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from neuroclass.evaluation.evaluate import evaluate_run
    from neuroclass.evaluation.metrics import format_metrics

    metrics, what = evaluate_run(args.run, args.data)
    if args.json:
        print(json.dumps({"data": what, **metrics}))
    else:
        print(f"evaluated on {what}")
        print(format_metrics(metrics))
    if not args.no_report:
        _report_after(args.run, args.data, sys.stderr if args.json else sys.stdout)  # stdout stays JSON
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from neuroclass.inference import Predictor, format_predictions

    if args.top_k < 1:
        raise NeuroclassError(f"--top-k must be >= 1. Got {args.top_k} instead.")
    preds = Predictor.from_run(args.run).predict_files(args.files, top_k=args.top_k,
                                                       abstain_below=args.abstain_below)
    if args.json:
        for p in preds:
            print(json.dumps(p.as_dict(), ensure_ascii=False))
    else:
        print(format_predictions(preds))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from neuroclass.api import build_config
    from neuroclass.config import parse_duration
    from neuroclass.bench import format_bench, run_bench

    if args.target is not None and not 0 < args.target <= 1:
        raise NeuroclassError(f"--target must be an accuracy in (0, 1], e.g. 0.91. Got {args.target} instead.")
    cfg = build_config(args.data, args.model, config=args.config, overrides=["train.quiet=true", *args.set])
    result = run_bench(cfg, target=args.target, max_seconds=parse_duration(args.max_time))
    print(json.dumps(result) if args.json else format_bench(result))
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from neuroclass.api import build_config
    from neuroclass.lr_find import lr_find

    cfg = build_config(args.data, args.model, config=args.config, overrides=["train.quiet=true", *args.set],
                       out=args.out)
    found = lr_find(cfg, steps=args.steps)
    if found.suggestion is None:
        print(f"no suggestion: the loss did not fall over {len(found.curve.lrs)} steps; see {found.folder / 'lr_find.png'}")
        return 0
    lr = f"{found.suggestion.lr:.2g}"
    print(f"suggested optim.lr {lr} (a tenth of {found.suggestion.lr_at_min:.2g}, where the loss was lowest)")
    print(f"curve: {found.folder / 'lr_find.png'}")
    print(f"use it: neuroclass train {shlex.quote(args.data)} --set optim.lr={lr}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from neuroclass.data import BUILTIN
    from neuroclass.data.download import find_local

    for name, text in BUILTIN.items():
        where = ""
        if name in ("fashion-mnist", "mnist"):
            folder = find_local(name)
            where = f" [files: {folder}]" if folder else f" [not present: neuroclass data get {name}]"
        print(f"{name:<15}{text}{where}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import dataclasses

    from neuroclass.models import MODELS

    for name in MODELS.names():
        family = MODELS.get(name)
        defaults = dataclasses.asdict(family.config())
        print(f"{name:<10}{family.summary}")
        print(f"{'':<10}options: " + ", ".join(f"{k}={v}" for k, v in defaults.items()))
        if family.sizes:
            sizes = "; ".join(f"{size} " + " ".join(f"{k}={v}" for k, v in preset.items())
                              for size, preset in family.sizes)
            print(f"{'':<10}sizes (model.size; auto with a time budget: largest with "
                  f">= {family.min_epochs:g} epochs): {sizes}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from neuroclass.data.download import download

    folder = download(args.name, args.dir)
    print(f"{args.name}: files in {folder}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "bench": cmd_bench,
            "embed": cmd_embed, "report": cmd_report, "datasets": cmd_datasets, "models": cmd_models, "data": cmd_data,
            "lr-find": cmd_lr_find}


def main(argv: list[str] | None = None, before_rename: Callable[[Path], None] | None = None) -> int:
    """Run the command ``argv`` (default sys.argv[1:]); the exit code. ``before_rename(tmp)``: called
    as each training checkpoint's files are on disk, before its rename (a moment for tests to act)."""
    started = time.perf_counter()  # a time budget counts from here: loading the libraries is part of it
    args = _parser().parse_args(argv)
    args.started = started
    args.before_rename = before_rename
    # the words as given, for the run's record (sys.argv is the caller's when main() is called)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    with log_lines(quiet=getattr(args, "quiet", False)):
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except NeuroclassError as exc:
        if args.debug:
            raise
        print(f"neuroclass: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("neuroclass: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
