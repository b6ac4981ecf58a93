"""Measurement and listing commands: bench, lr-find, datasets, models, data get."""
from __future__ import annotations

import argparse
import json
import shlex

from neuroclass.cli.common import add_common, add_config_options
from neuroclass.errors import NeuroclassError


def add_parsers(sub) -> None:
    p = sub.add_parser("bench", help="examples/s, GFLOP/s against the matmul peak, time to an accuracy")
    p.add_argument("data", metavar="DATA", nargs="?", default="fashion-mnist",
                   help="data to measure on (default fashion-mnist)")
    p.add_argument("--model", help="model family (default: the config's)")
    p.add_argument("--target", type=float, help="also train until this test accuracy, e.g. 0.91")
    p.add_argument("--max-time", default="10m", help="training time limit with --target (default 10m)")
    add_config_options(p)
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")
    add_common(p)

    p = sub.add_parser("lr-find", help="the learning-rate range test: a plot and a suggested optim.lr")
    p.add_argument("data", metavar="DATA", help="data, as for train")
    p.add_argument("--model", help="model family (default: auto)")
    p.add_argument("--steps", type=int, default=100, help="steps of the sweep (default 100)")
    add_config_options(p)
    p.add_argument("--label-column", help="label column of a CSV/Parquet table, as for train")
    p.add_argument("--seed", type=int, help="random seed: the split and the network's start, as for train")
    p.add_argument("--out", help="folder for the sweep's folder (default runs/)")
    add_common(p)

    p = sub.add_parser("datasets", help="list built-in datasets")
    add_common(p)
    p = sub.add_parser("models", help="list registered model families and their options")
    add_common(p)

    p = sub.add_parser("data", help="dataset files: `neuroclass data get fashion-mnist`")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    g = data_sub.add_parser("get", help="download a dataset's official files (checksums verified)")
    g.add_argument("name", choices=["fashion-mnist", "mnist"])
    g.add_argument("--dir", help="destination folder (default $NEUROCLASS_DATA or ~/.cache/neuroclass)")
    add_common(g)


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

    cfg = build_config(args.data, args.model, seed=args.seed, config=args.config,
                       overrides=["train.quiet=true", *args.set], out=args.out, label_column=args.label_column)
    found = lr_find(cfg, steps=args.steps)
    if found.suggestion is None:
        print(f"no suggestion: {found.no_suggestion}")
        print(f"curve: {found.folder / 'lr_find.png'}")
        return 0
    lr = f"{found.suggestion.lr:.2g}"
    print(f"suggested optim.lr {lr} (a tenth of {found.suggestion.lr_at_min:.2g}, where the loss was lowest)")
    print(f"curve: {found.folder / 'lr_find.png'}")
    print(f"use it: {lr_find_train_command(args, lr)}")
    return 0


def lr_find_train_command(args: argparse.Namespace, lr: str) -> str:
    """The `neuroclass train` command that trains what lr-find swept, with ``lr`` as optim.lr:
    lr-find's DATA, --model, --config, --label-column, --seed and --set options, shell-quoted.

    >>> ns = argparse.Namespace(data="my data.csv", model="mlp", config=None, label_column="kind",
    ...                         seed=None, set=["model.options.hidden=[16]"])
    >>> lr_find_train_command(ns, "0.01")
    "neuroclass train 'my data.csv' --model mlp --label-column kind --set 'model.options.hidden=[16]' --set optim.lr=0.01"
    """
    argv = ["neuroclass", "train", args.data]
    for flag, value in (("--model", args.model), ("--config", args.config),
                        ("--label-column", args.label_column), ("--seed", args.seed)):
        if value is not None:
            argv += [flag, str(value)]
    for override in [*args.set, f"optim.lr={lr}"]:
        argv += ["--set", override]
    return shlex.join(argv)


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
    from neuroclass.classical import CLASSICAL

    print("\nclassical families (feature rows: tables, image pixels, or --set data.features=hog|lbp|hog+lbp):")
    for name in CLASSICAL.names():
        family = CLASSICAL.get(name)
        defaults = dataclasses.asdict(family.options())
        print(f"{name:<14}{family.summary}")
        print(f"{'':<14}options: " + ", ".join(f"{k}={v}" for k, v in defaults.items()))
    _print_glassbox()
    return 0


def _print_glassbox() -> None:
    from neuroclass.glassbox import PRESETS
    from neuroclass.training.glassbox_settings import CONFIG_KEYS

    print("\nglassbox      the NumPy network for learning how one works (neuroclass.glassbox): dense layers, "
          "backpropagation, gradient descent")
    for preset, values in PRESETS.items():
        print(f"{'':<14}model.options.preset={preset}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    mapped = ", ".join(f"{v} ({k})" for k, v in CONFIG_KEYS.items())
    print(f"{'':<14}options: preset, hidden, activation, output, loss, targets, dropout, batch_norm; given, "
          f"{mapped} replace the preset's")


def cmd_data(args: argparse.Namespace) -> int:
    from neuroclass.data.download import download

    folder = download(args.name, args.dir)
    print(f"{args.name}: files in {folder}")
    return 0


COMMANDS = {"bench": cmd_bench, "lr-find": cmd_lr_find, "datasets": cmd_datasets, "models": cmd_models,
            "data": cmd_data}
