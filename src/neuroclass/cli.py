"""The `neuroclass` command: parses arguments, builds a config, calls the library, prints.

Bad input ends with one line "neuroclass: error: ..." and exit code 2 (a traceback with --debug).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import warnings

from neuroclass.errors import NeuroclassError

EXIT_BAD_INPUT = 2


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuroclass", description=
                                     "Train, evaluate and use neural-network classifiers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a classifier on DATA and write a run folder")
    p.add_argument("data", metavar="DATA", help="built-in name (fashion-mnist, mnist, digits, blocks), "
                   "a folder of IDX files or of class sub-folders, a .csv/.parquet table or an .npz")
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
    _add_common(p)

    p = sub.add_parser("evaluate", help="metrics of a run on its test split or on other data")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("--data", help="evaluate on this data instead of the run's test split")
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    _add_common(p)

    p = sub.add_parser("predict", help="predict the class of image files or CSV rows")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("files", metavar="FILE", nargs="+", help="PNG/JPEG images, or a CSV/Parquet of rows")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to list (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    _add_common(p)

    p = sub.add_parser("bench", help="images/s, GFLOP/s against the matmul peak, time to an accuracy")
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


def cmd_train(args: argparse.Namespace) -> int:
    from neuroclass.api import build_config
    from neuroclass.run import train_run

    overrides = (["train.compile=true"] if args.compile else []) + args.set
    cfg = build_config(args.data, args.model, args.epochs, args.time_budget, args.seed, args.config,
                       overrides, args.out, args.label_column, True if args.quiet else None)
    result = train_run(cfg, command="neuroclass " + shlex.join(sys.argv[1:]))
    t = result.timing
    print(f"test accuracy {result.metrics['accuracy']:.4f}  macro F1 {result.metrics['macro_f1']:.4f}  "
          f"({t['epochs']} epochs, {t['train_seconds']:.1f}s training, "
          f"{t['train_images_per_second']:.0f} images/s)")
    if t["stop_reason"]:
        print(f"stopped: {t['stop_reason']}")
    print(f"run folder: {result.path}")
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
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from neuroclass.serving.predictor import Predictor, format_predictions

    if args.top_k < 1:
        raise NeuroclassError(f"--top-k must be >= 1. Got {args.top_k} instead.")
    preds = Predictor.from_run(args.run).predict_files(args.files, top_k=args.top_k)
    if args.json:
        for p in preds:
            print(json.dumps(p.as_dict()))
    else:
        print(format_predictions(preds))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from neuroclass.api import build_config
    from neuroclass.config import parse_duration
    from neuroclass.evaluation.bench import format_bench, run_bench

    if args.target is not None and not 0 < args.target <= 1:
        raise NeuroclassError(f"--target must be an accuracy in (0, 1], e.g. 0.91. Got {args.target} instead.")
    cfg = build_config(args.data, args.model, config=args.config, overrides=["train.quiet=true", *args.set])
    result = run_bench(cfg, target=args.target, max_seconds=parse_duration(args.max_time))
    print(json.dumps(result) if args.json else format_bench(result))
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
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from neuroclass.data.download import download

    folder = download(args.name, args.dir)
    print(f"{args.name}: files in {folder}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "bench": cmd_bench,
            "datasets": cmd_datasets, "models": cmd_models, "data": cmd_data}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"neuroclass: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.showwarning = _show_warning
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
