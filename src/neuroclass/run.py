"""A run: load data, split, build, train, evaluate, and write the run folder atomically.

The folder is assembled under a hidden temporary name and renamed into place only when every file
is written, so a failed or interrupted run never leaves a half-written run folder behind.
"""
from __future__ import annotations

import csv
import io
import json
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from neuroclass import data as data_mod
from neuroclass.artifacts import model_metadata, normalization_stats, save_model
from neuroclass.config import Config, save_config, write_text_atomic
from neuroclass.device import pick_device, set_threads
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.models import create, resolved_options
from neuroclass.training.trainer import Trainer, predict_logits


# What prediction needs to turn raw inputs into model inputs (not where or how data was cached).
MODEL_INPUT_KEYS = ("channels", "size", "columns", "categorical", "feature_names")


@dataclass
class RunResult:
    path: Path
    metrics: dict  # test metrics
    history: list  # per-epoch rows
    timing: dict  # seconds and images/s


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def run_name(cfg: Config, out: Path) -> Path:
    data_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(cfg.data.source.split(":")[0]).stem or "data")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    model_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", cfg.model.name)  # tv:resnet18 -> tv-resnet18
    path = out / f"{data_name}-{model_name}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = out / f"{data_name}-{model_name}-{stamp}-{suffix}"
    return path


def environment(device: torch.device, threads: int, seed: int, data_hash: str) -> dict:
    import sklearn
    import torchvision

    from neuroclass import __version__

    return {"neuroclass": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "device": str(device),
            "threads": threads, "seed": seed, "data_hash": data_hash}


def history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    fields = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in fields})
    return buf.getvalue()


def train_run(cfg: Config, command: str = "") -> RunResult:
    """Train ``cfg`` end to end and return the finished run folder with its test metrics.

    >>> result = train_run(load_config(overrides=["data.source=digits", "model.name=mlp"]))  # doctest: +SKIP
    """
    run_start = time.perf_counter()
    deadline = run_start + cfg.train.time_budget if cfg.train.time_budget else None
    seed_everything(cfg.train.seed)
    threads = set_threads(cfg.train.threads)
    device = pick_device(cfg.train.device)
    resolved_options(cfg.model.name, cfg.model.options)  # a typo fails before the data loads
    dataset = data_mod.load(cfg.data)
    splits = data_mod.split(dataset, cfg.data.val_fraction, cfg.data.test_fraction, cfg.train.seed)
    if splits.test is None:
        raise NeuroclassError(f"{cfg.data.source}: no test split; set data.test_fraction > 0 "
                              "(e.g. --set data.test_fraction=0.2) or provide a test/ folder")
    mean, std = normalization_stats(splits.train.x)
    model = create(cfg.model, dataset.input_shape, len(dataset.classes), mean, std)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    final = run_name(cfg, out)
    partial = out / f".partial-{final.name}"
    partial.mkdir()
    try:
        trainer = Trainer(cfg.train, cfg.optim, cfg.augment, device, deadline=deadline,
                          reserve_examples=len(splits.test))
        state = trainer.fit(model, splits.train, splits.val)
        eval_start = time.perf_counter()
        logits = predict_logits(model, splits.test.x, device, cfg.train.eval_batch_size, cfg.train.channels_last)
        eval_seconds = time.perf_counter() - eval_start
        proba = torch.softmax(logits, dim=1).numpy()
        metrics = classification_metrics(splits.test.y.numpy(), proba, dataset.classes)
        timing = {"train_seconds": state.train_seconds, "epochs": state.epoch,
                  "train_images_per_second": state.samples_seen / max(1e-9, state.train_seconds),
                  "test_seconds": eval_seconds,
                  "inference_images_per_second": len(splits.test) / max(1e-9, eval_seconds),
                  "total_seconds": time.perf_counter() - run_start, "stop_reason": state.stop_reason,
                  "best_epoch": state.best_epoch}
        meta = model_metadata(cfg.model, resolved_options(cfg.model.name, cfg.model.options),
                              dataset.input_shape, dataset.classes, dataset.kind,
                              {k: v for k, v in dataset.preprocessing.items() if k in MODEL_INPUT_KEYS})
        save_model(partial, model.cpu(), meta)
        save_config(cfg, partial / "config.yaml")
        write_text_atomic(partial / "metrics.json", json.dumps(metrics, indent=2))
        write_text_atomic(partial / "metrics.csv", history_csv(state.history))
        write_text_atomic(partial / "timing.json", json.dumps(timing, indent=2))
        env = environment(device, threads, cfg.train.seed, dataset.content_hash())
        env["command"] = command
        write_text_atomic(partial / "environment.json", json.dumps(env, indent=2))
        split_record = {"sizes": {k: int(len(v)) for k, v in splits.indices.items()}, **splits.method}
        write_text_atomic(partial / "split.json", json.dumps(split_record, indent=2))
        np.savez_compressed(partial / "split.npz", **splits.indices)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return RunResult(final, metrics, state.history, timing)
