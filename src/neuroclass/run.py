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
from neuroclass.config import Config, TrainConfig, save_config, write_text_atomic
from neuroclass.device import pick_device, set_threads
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.evaluation.tta import inference_policy, tta_logits
from neuroclass.models import create, resolved_options, sized_options
from neuroclass.training.budget import plan_for_budget, reserve_examples, trained_shift
from neuroclass.training.finetune import prepare_fine_tuning, resolve_transfer
from neuroclass.training.trainer import Trainer


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


def new_folder(cfg: Config) -> tuple[Path, Path]:
    """The run folder's final name, and the hidden folder it is assembled in (created here)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    final = run_name(cfg, out)
    partial = out / f".partial-{final.name}"
    partial.mkdir()
    return final, partial


def write_run_files(folder: Path, cfg: Config, model: torch.nn.Module, meta: dict, metrics: dict,
                    history: list[dict], timing: dict, env: dict, splits: data_mod.Splits) -> None:
    """Every file of a run folder but the report, each written atomically."""
    save_model(folder, model, meta)
    save_config(cfg, folder / "config.yaml")
    write_text_atomic(folder / "metrics.json", json.dumps(metrics, indent=2))
    write_text_atomic(folder / "metrics.csv", history_csv(history))
    write_text_atomic(folder / "timing.json", json.dumps(timing, indent=2))
    write_text_atomic(folder / "environment.json", json.dumps(env, indent=2))
    split_record = {"sizes": {k: int(len(v)) for k, v in splits.indices.items()}, **splits.method}
    write_text_atomic(folder / "split.json", json.dumps(split_record, indent=2))
    np.savez_compressed(folder / "split.npz", **splits.indices)


def train_run(cfg: Config, command: str = "", callbacks: list | None = None) -> RunResult:
    """Train ``cfg`` end to end and return the finished run folder with its test metrics.

    >>> result = train_run(load_config(overrides=["data.source=digits", "model.name=mlp"]))  # doctest: +SKIP
    """
    run_start = time.perf_counter()
    deadline = run_start + cfg.train.time_budget if cfg.train.time_budget else None
    seed_everything(cfg.train.seed)
    threads = set_threads(cfg.train.threads)
    device = pick_device(cfg.train.device)
    cfg = resolve_transfer(cfg)  # --from RUN: the run's model; conflicting starting points fail
    resolved_options(cfg.model.name, sized_options(cfg.model))  # a typo fails before the data loads
    dataset = data_mod.load(cfg.data)
    splits = data_mod.split(dataset, cfg.data.val_fraction, cfg.data.test_fraction, cfg.train.seed)
    if splits.test is None:
        raise NeuroclassError(f"{cfg.data.source}: no test split; set data.test_fraction > 0 "
                              "(e.g. --set data.test_fraction=0.2) or provide a test/ folder")
    mean, std = normalization_stats(splits.train.x)
    # with a time budget: the model size and augmentation this machine can afford
    cfg, plan = plan_for_budget(cfg, splits, dataset.input_shape, len(dataset.classes), mean, std,
                                device, deadline)
    model = create(cfg.model, dataset.input_shape, len(dataset.classes), mean, std)
    # --pretrained / --weights / --from: starting weights, head-only epochs, discriminative rates
    tuning = prepare_fine_tuning(model, cfg, dataset.input_shape, dataset.classes)
    final, partial = new_folder(cfg)
    try:
        trainer = Trainer(cfg.train, cfg.optim, cfg.augment, device, deadline=deadline,
                          callbacks=tuning.callbacks + (callbacks or []),
                          reserve_examples=reserve_examples(splits, cfg.train.tta, trained_shift(cfg)),
                          lr_scales=tuning.lr_scales)
        state = trainer.fit(model, splits.train, splits.val)
        val_x, val_y = (splits.val.x, splits.val.y) if splits.val is not None else (None, None)
        policy = inference_policy(model, val_x, val_y, device, cfg.train.tta, cfg.train.eval_batch_size,
                                  cfg.train.channels_last, flip_trained=cfg.augment.enabled and cfg.augment.flip,
                                  shift=trained_shift(cfg))
        eval_start = time.perf_counter()
        logits = tta_logits(model, splits.test.x, device, policy["tta"], cfg.train.eval_batch_size,
                            cfg.train.channels_last, policy["tta_shift"])
        eval_seconds = time.perf_counter() - eval_start
        # the probabilities `predict` gives (Predictor.probabilities): test-time augmentation and
        # temperature as chosen on the validation split
        proba = torch.softmax(logits / policy["temperature"], dim=1).numpy()
        metrics = classification_metrics(splits.test.y.numpy(), proba, dataset.classes)
        timing = {"train_seconds": state.train_seconds, "epochs": state.epoch,
                  "train_images_per_second": state.samples_seen / max(1e-9, state.train_seconds),
                  "test_seconds": eval_seconds, "inference_images_per_second": len(splits.test) / eval_seconds,
                  "total_seconds": time.perf_counter() - run_start, "stop_reason": state.stop_reason.value,
                  "stop_detail": state.stop_detail, "best_epoch": state.best_epoch, **plan}
        meta = model_metadata(cfg.model, resolved_options(cfg.model.name, sized_options(cfg.model)),
                              dataset.input_shape, dataset.classes, dataset.kind,
                              {k: v for k, v in dataset.preprocessing.items() if k in MODEL_INPUT_KEYS},
                              policy["temperature"])
        meta["tta"], meta["tta_shift"] = policy["tta"], policy["tta_shift"]
        env = environment(device, threads, cfg.train.seed, dataset.content_hash())
        env["command"] = command
        write_run_files(partial, cfg, model.cpu(), meta, metrics, state.history, timing, env, splits)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return RunResult(final, metrics, state.history, timing)
