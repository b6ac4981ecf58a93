"""Time to 91% and 92% Fashion-MNIST test accuracy: neuroclass against three common peers.

Contenders, all in this one run on the same machine, data, test set (the official 10k), threads and seed:
  a  neuroclass defaults (the pipeline: prepare, build, fit, with the default config, no validation split)
  b  a plain PyTorch loop over tensors in memory (2 conv + 2 FC CNN, Adam 1e-3, batch 128)
  c  the tutorial pipeline: torchvision FashionMNIST + transforms + DataLoader, same CNN and optimizer
  d  Keras 3 with its torch backend, same CNN, in benchmarks/.venv-keras (created on first use)
Times are training wall time only: each contender's per-epoch test evaluation is left out of its
clock, and targets are checked once per epoch. A contender stops once it has reached every target.
neuroclass runs last: its training tunes the process's memory allocator, which the in-process peers
(b, c) should not inherit; the table keeps the a, b, c, d order.

    python benchmarks/time_to_accuracy.py [--epochs 8] [--only a,b,c,d] [--quick]
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import keras_env
from bench_table import fmt_percent, fmt_seconds, format_table, machine_summary, settings_note
from neuroclass import data as data_mod
from neuroclass.config import DataConfig, load_config
from neuroclass.data.download import find_local
from neuroclass.inference import predict_logits
from neuroclass.pipeline import build, fit, prepare, process_state
from neuroclass.training.callbacks import Callback
from neuroclass.training.state import StopReason

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel mean/std in [0, 1] units (the tutorial's)
IDX_STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
NAMES = {"a": "a neuroclass defaults", "b": "b PyTorch loop, tensors", "c": "c torchvision DataLoader",
         "d": "d Keras 3 (torch backend)"}


@dataclass
class Outcome:
    name: str
    params: int | None = None
    curve: list = field(default_factory=list)  # (epoch, cumulative training seconds, test accuracy)
    note: str = ""
    error: str = ""


# ----------------------------------------------------------------------------- the reference CNN

def reference_cnn(padding: int) -> nn.Sequential:
    """conv 1->32 3x3, ReLU, maxpool, conv 32->64 3x3, ReLU, maxpool, FC ->128, ReLU, FC ->10."""
    side = 28
    for _ in range(2):
        side = (side + 2 * padding - 2) // 2
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * side * side, 128), nn.ReLU(), nn.Linear(128, 10))


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def accuracy(model: nn.Module, batches) -> float:
    model.eval()
    correct = seen = 0
    for xb, yb in batches:
        correct += int((model(xb).argmax(1) == yb).sum())
        seen += len(yb)
    model.train()
    return correct / seen


def train_reference(name: str, model: nn.Module, epoch_batches, test_batches, epochs: int,
                    targets: list[float]) -> Outcome:
    """The idiomatic loop shared by b and c: only ``epoch_batches()`` (a fresh iterable) differs."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    outcome, train_seconds = Outcome(name, param_count(model)), 0.0
    model.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        for xb, yb in epoch_batches():
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        train_seconds += time.perf_counter() - start
        outcome.curve.append((epoch + 1, train_seconds, accuracy(model, test_batches)))
        if outcome.curve[-1][2] >= max(targets):
            break
    return outcome


# ----------------------------------------------------------------------------- contenders

class TestAccuracyClock(Callback):
    """Records (epoch, training seconds, test accuracy) after every epoch; evaluation is off the clock."""

    def __init__(self, test, device: torch.device, targets: list[float]) -> None:
        self.test, self.device, self.targets = test, device, targets

    def on_fit_start(self, state, model) -> None:
        self.start, self.excluded, self.curve = time.perf_counter(), 0.0, []

    def on_epoch_end(self, state, model) -> None:
        eval_start = time.perf_counter()
        train_seconds = eval_start - self.start - self.excluded
        logits = predict_logits(model, self.test.x, self.device)
        acc = float((logits.argmax(1) == self.test.y).float().mean())
        self.excluded += time.perf_counter() - eval_start
        self.curve.append((state.epoch, train_seconds, acc))
        if acc >= max(self.targets):
            state.request_stop(StopReason.TARGET_REACHED, "every target reached")


def run_neuroclass(ds, opts) -> Outcome:
    """The library's own pipeline (prepare -> build -> fit) with its defaults, as `neuroclass train`
    runs it, plus a callback that scores the test split after each epoch off the clock."""
    overrides = ["data.source=fashion-mnist", "train.quiet=true", "data.val_fraction=0",
                 f"train.device={opts.device}", f"train.seed={opts.seed}"]
    if opts.quick:
        overrides.append("train.epochs=1")
    cfg = load_config(overrides=overrides)
    with process_state(cfg):
        prep = prepare(cfg, dataset=ds)
        model, tuning = build(prep)
        clock = TestAccuracyClock(prep.splits.test, prep.device, opts.targets)
        fit(prep, model, tuning, callbacks=[clock])
    return Outcome(NAMES["a"], param_count(model), clock.curve,
                   note=f"model {cfg.model.name}, {cfg.optim.name} {cfg.optim.schedule}")


def run_tensor_loop(ds, opts) -> Outcome:
    device = torch.device(opts.device)

    def prepare(part):
        x = (ds.x[ds.parts[part]].float().div(255.0) - MEAN) / STD
        return x.to(device), ds.y[ds.parts[part]].to(device)

    x, y = prepare("train")
    xt, yt = prepare("test")
    torch.manual_seed(opts.seed)
    model = reference_cnn(opts.padding).to(device)

    def epoch_batches():
        order = torch.randperm(len(y), device=device)
        return ((x[i], y[i]) for i in order.split(128))

    test_batches = [(xt[i:i + 1000], yt[i:i + 1000]) for i in range(0, len(yt), 1000)]
    return train_reference(NAMES["b"], model, epoch_batches, test_batches, opts.epochs, opts.targets)


def torchvision_root(tmp: Path, source: Path) -> Path:
    """root/FashionMNIST/raw/<stem> as torchvision 0.29 wants it.

    Its _check_exists only asks that the decompressed files exist (no checksum without download=True)
    and _load_data reads them uncompressed, so the Debian .gz files are decompressed here (their gzip
    bytes differ from upstream's; the content is the same).
    """
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in IDX_STEMS:
        if (source / stem).is_file():
            (raw / stem).symlink_to(source / stem)
        else:
            with gzip.open(source / f"{stem}.gz") as src, open(raw / stem, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return tmp


def run_torchvision(ds, opts) -> Outcome:
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    with tempfile.TemporaryDirectory(prefix="fmnist-tv-") as tmp:
        root = torchvision_root(Path(tmp), opts.data_dir)
        train = datasets.FashionMNIST(root, train=True, download=False, transform=transform)
        test = datasets.FashionMNIST(root, train=False, download=False, transform=transform)
        if opts.quick:
            train, test = Subset(train, range(opts.train_limit)), Subset(test, range(opts.test_limit))
        torch.manual_seed(opts.seed)
        model = reference_cnn(opts.padding)
        loader = DataLoader(train, batch_size=128, shuffle=True)  # num_workers=0, the default
        test_loader = DataLoader(test, batch_size=1000)
        outcome = train_reference(NAMES["c"], model, lambda: loader, test_loader, opts.epochs, opts.targets)
    outcome.note = "num_workers=0 (default); PIL + ToTensor + Normalize per sample"
    return outcome


def run_keras(ds, opts) -> Outcome:
    args = ["--data-dir", str(opts.data_dir), "--epochs", str(opts.epochs), "--seed", str(opts.seed),
            "--threads", str(torch.get_num_threads()), "--padding", str(opts.padding),
            "--mean", str(MEAN), "--std", str(STD), "--targets", ",".join(map(str, opts.targets))]
    if opts.quick:
        args += ["--train-limit", str(opts.train_limit), "--test-limit", str(opts.test_limit)]
    result, reason = keras_env.run_peer(args, opts.device, timeout_s=600 + 900 * opts.epochs)
    if result is None:
        return Outcome(NAMES["d"], error=reason)
    curve = [(e["epoch"], e["train_seconds"], e["accuracy"]) for e in result["epochs"]]
    return Outcome(NAMES["d"], result["params"], curve,
                   note=f"keras {result['keras']}, torch {result['torch']}, {result['threads']} threads")


CONTENDERS = {"a": run_neuroclass, "b": run_tensor_loop, "c": run_torchvision, "d": run_keras}


# ----------------------------------------------------------------------------- data, table, main

def load_data(opts):
    """The Fashion-MNIST Dataset (official split), cut to the quick slices when asked."""
    ds = data_mod.load(DataConfig(source="fashion-mnist"))
    if opts.quick:
        train, test = ds.parts["train"][:opts.train_limit], ds.parts["test"][:opts.test_limit]
        ds = ds.subset(np.concatenate([train, test]))
        ds.parts = {"train": np.arange(len(train)), "test": np.arange(len(train), len(train) + len(test))}
    return ds


def time_to(curve: list, target: float) -> str:
    for epoch, seconds, acc in curve:
        if acc >= target:
            return f"{seconds:.1f} s (epoch {epoch})"
    if not curve:
        return "-"
    return f"not reached (best {fmt_percent(max(a for _, _, a in curve))} in {curve[-1][1]:.1f} s)"


def table(outcomes: list[Outcome], targets: list[float]) -> str:
    headers = ["contender", "params"] + [f"time to {fmt_percent(t)}" for t in targets] + \
        ["best acc", "epochs", "train time", "notes"]
    rows = []
    for o in outcomes:
        if o.error:
            rows.append([o.name, "-"] + ["-"] * len(targets) + ["-", "-", "-", f"NOT RUN: {o.error}"])
            continue
        best = max((a for _, _, a in o.curve), default=None)
        total = o.curve[-1][1] if o.curve else None
        rows.append([o.name, f"{o.params:,}"] + [time_to(o.curve, t) for t in targets] +
                    [fmt_percent(best), str(len(o.curve)), fmt_seconds(total), o.note])
    return format_table(headers, rows)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--epochs", type=int, default=8, help="max epochs for the peers b, c, d (default 8)")
    parser.add_argument("--only", default="a,b,c,d", help="comma-separated contenders (default a,b,c,d)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 3000 train / 1000 test examples, 1 epoch, targets 60%%/70%%")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="device for every contender (default cpu)")
    parser.add_argument("--padding", type=int, choices=(0, 1), default=1,
                        help="conv padding of the peers' CNN: 0 -> 225,034 params, 1 -> 421,642")
    parser.add_argument("--train-limit", type=int, default=3000, help="quick mode's train slice (default 3000)")
    parser.add_argument("--test-limit", type=int, default=1000, help="quick mode's test slice (default 1000)")
    opts = parser.parse_args(argv)
    opts.only = [c.strip() for c in opts.only.split(",") if c.strip()]
    unknown = [c for c in opts.only if c not in CONTENDERS]
    if unknown:
        parser.error(f"--only: unknown contender(s) {', '.join(unknown)}; choose from a, b, c, d")
    opts.targets = [0.60, 0.70] if opts.quick else [0.91, 0.92]
    if opts.quick:
        opts.epochs = 1
    opts.data_dir = find_local("fashion-mnist") or Path("/usr/share/datasets/fashion-mnist")
    return opts


def main(argv=None) -> None:
    opts = parse_args(argv)
    torch.manual_seed(opts.seed)
    ds = load_data(opts)
    n_train, n_test = len(ds.parts["train"]), len(ds.parts["test"])
    print(machine_summary())
    print(f"data: Fashion-MNIST from {opts.data_dir}, {n_train} train / {n_test} official test | "
          f"device {opts.device} | seed {opts.seed} | peers up to {opts.epochs} epochs"
          + settings_note(quick=opts.quick))
    print(f"peer CNN: {param_count(reference_cnn(opts.padding)):,} parameters with padding={opts.padding}")
    outcomes = {}
    # neuroclass last: its training tunes this process's memory allocator (device.keep_freed_memory),
    # and the in-process PyTorch peers are measured with the allocator as they would find it
    for key in sorted(opts.only, key=lambda k: k == "a"):
        print(f"running {NAMES[key]} ...", flush=True)
        try:
            outcomes[key] = CONTENDERS[key](ds, opts)
        except Exception as exc:  # one contender failing must not hide the others' numbers
            outcomes[key] = Outcome(NAMES[key], error=f"{type(exc).__name__}: {exc}")
    print()
    print(table([outcomes[key] for key in opts.only], opts.targets))


if __name__ == "__main__":
    main()
