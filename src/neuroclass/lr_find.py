"""`neuroclass lr-find`: the learning-rate range test (training/lr_range.py) on a run's data and
network, its curve as a plot and a table in a folder, and the suggested ``optim.lr``.

The data and the network are those ``train`` would use with the same config (``pipeline.prepare``
and ``build``), without a time budget; the sweep trains a fresh copy of the network on shuffled
batches of the training split, without augmentation.

Example::

    found = lr_find(load_config(overrides=["data.source=digits", "model.name=mlp"]))
    found.suggestion.lr, found.folder
    # -> (0.003..., PosixPath('runs/lr-find-digits-mlp-20261130-101500'))
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from neuroclass.config import Config
from neuroclass.errors import counted
from neuroclass.io import write_bytes_atomic, write_text_atomic
from neuroclass.pipeline import build, prepare, process_state
from neuroclass.runs import run_name
from neuroclass.training.lr_range import LRCurve, Suggestion, lr_range_test, suggest_lr
from neuroclass.training.trainer import Batches, resolve_batch_size


@dataclass
class LRFind:
    """The sweep, the suggestion, the folder holding lr_find.csv (step, lr, loss, smoothed),
    lr_find.json and lr_find.png, and ``no_suggestion``: why there is none (None when there is one)."""

    curve: LRCurve
    suggestion: Suggestion | None
    folder: Path
    no_suggestion: str | None = None


def read_suggestion(curve: LRCurve) -> tuple[Suggestion | None, str | None]:
    """The suggestion of ``curve`` (training/lr_range.suggest_lr) and, when there is none, why:
    the loss never fell, or it was lowest at the sweep's last step -- still falling, so the curve
    has no minimum to read a rate from (too few steps, or a sweep that ends too low).

    >>> read_suggestion(LRCurve([1e-3, 1e-2, 1e-1], [2.0, 1.0, 0.5], [2.0, 1.0, 0.5], False))[1]
    "the loss was still falling at the sweep's last step (lr 0.1), so the curve has no minimum to read a rate from; sweep more --steps"
    """
    suggestion = suggest_lr(curve.lrs, curve.smoothed)
    if suggestion is None:
        return None, f"the loss did not fall over {counted(len(curve.lrs), 'step')}"
    if suggestion.lr_at_min == curve.lrs[-1]:
        return None, (f"the loss was still falling at the sweep's last step (lr {curve.lrs[-1]:.2g}), so "
                      "the curve has no minimum to read a rate from; sweep more --steps")
    return suggestion, None


def lr_find(cfg: Config, steps: int = 100) -> LRFind:
    """Run the range test for ``cfg``'s data and model over ``steps`` steps and write its folder
    under ``cfg.out``; no suggestion (``no_suggestion`` says why) when the loss never fell or was
    still falling at the last step. Raises NeuroclassError for bad config or data (as ``train`` does), and
    OSError when the folder cannot be written."""
    cfg = replace(cfg, train=replace(cfg.train, time_budget=None))
    with process_state(cfg):
        prep = prepare(cfg, require_test=False)
        model, _ = build(prep)
        model.to(prep.device)
        train = prep.splits.train
        generator = torch.Generator().manual_seed(prep.cfg.train.seed)
        batches = Batches(train.x.to(prep.device), train.y.to(prep.device),
                          resolve_batch_size(prep.cfg.train.batch_size, len(train)), generator)
        curve = lr_range_test(model, _endless(batches), prep.cfg.optim, steps,
                              loss_fn=lambda output, target: model.loss(output, target, 0.0))
    suggestion, why = read_suggestion(curve)
    folder = Path(prep.cfg.out) / f"lr-find-{run_name(prep.cfg.data.source, prep.cfg.model.name)}"
    _write(folder, curve, suggestion, why, prep.cfg)
    return LRFind(curve, suggestion, folder, why)


def _endless(batches: Batches):
    """Epoch after epoch of ``batches``, each in a new order."""
    while True:
        yield from batches


def _write(folder: Path, curve: LRCurve, suggestion: Suggestion | None, why: str | None, cfg: Config) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["step", "lr", "loss", "smoothed"])
    for step, row in enumerate(zip(curve.lrs, curve.losses, curve.smoothed), start=1):
        writer.writerow([step, *row])
    write_text_atomic(folder / "lr_find.csv", table.getvalue())
    record = {"data": cfg.data.source, "model": cfg.model.name, "optimizer": cfg.optim.name,
              "steps": len(curve.lrs), "diverged": curve.diverged,
              "suggestion": asdict(suggestion) if suggestion else None, "no_suggestion": why,
              "rule": "a tenth of the rate at the smoothed loss's minimum (Smith 2017; fastai's lr_min / 10)"}
    write_text_atomic(folder / "lr_find.json", json.dumps(record, indent=1))
    write_bytes_atomic(folder / "lr_find.png", _plot(curve, suggestion))


def _plot(curve: LRCurve, suggestion: Suggestion | None) -> bytes:
    """The loss and its moving average against the rate (log scale), the suggestion marked: PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6), dpi=100)
    ax = fig.add_subplot()
    ax.plot(curve.lrs, curve.losses, color="0.75", linewidth=0.8, label="loss")
    ax.plot(curve.lrs, curve.smoothed, color="C0", label="moving average")
    if suggestion is not None:
        ax.axvline(suggestion.lr, color="C3", linestyle="--", label=f"suggested lr {suggestion.lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
