"""What a time budget decides before training: the model's size and the augmentation it affords.

``model.size=auto`` times the family's sizes on this machine and keeps the largest that gets enough
epochs (models/sizing.py). When the budget leaves that model many epochs, a small network no longer
underfits and starts to memorise: ``augment.auto`` then turns on horizontal flips alone (measured on
Fashion-MNIST, 2 CPU cores, 18 epochs: 92.9% -> 93.6% test accuracy), if mirrored images keep their
class (data/symmetry.py). Everything decided is written to the run's config.yaml, so the saved
config rebuilds the same network and training without the budget's help.
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch

from neuroclass import data as data_mod
from neuroclass.config import Config
from neuroclass.data.symmetry import MIRROR_KEEP, mirror_retention
from neuroclass.models import create
from neuroclass.models.sizing import AUTO, choose_size, family_of
from neuroclass.training.finetune import transfer_source
from neuroclass.training.trainer import resolve_batch_size

FLIP_EPOCHS = 10  # the fewest epochs for which flips pay (they slow learning early on)


def reserve_examples(splits: data_mod.Splits, tta: str) -> int:
    """Examples evaluated after training, in single-pass units, for the time budget to hold back:
    the test split, and the validation passes that choose the test-time augmentation and fit the
    temperature (each doubled where the flip is tried)."""
    n_val = len(splits.val) if splits.val is not None else 0
    test_passes, val_passes = {"none": (1, 1), "flip": (2, 2), "auto": (2, 4)}[tta]
    return test_passes * len(splits.test) + val_passes * n_val


def size_for_budget(cfg: Config, splits: data_mod.Splits, input_shape: tuple[int, ...], classes: int,
                    mean: torch.Tensor, std: torch.Tensor, device: torch.device,
                    deadline: float) -> tuple[Config, dict | None]:
    """``model.size=auto``: the config at the largest size this machine trains for enough epochs
    in the time left, and a record of the timings (None when the size is fixed: by the config,
    by a starting point (--from, --weights, --pretrained), or by a family without sizes; and when
    train.epochs sets the length of training, so that the budget is only a limit)."""
    if cfg.model.size != AUTO or cfg.train.epochs or transfer_source(cfg):
        return cfg, None
    choice = choose_size(cfg.model, lambda m: create(m, input_shape, classes, mean, std), input_shape,
                         resolve_batch_size(cfg.train.batch_size, len(splits.train)), device,
                         cfg.train.channels_last, deadline - time.perf_counter(), len(splits.train),
                         len(splits.val) if splits.val is not None else 0,
                         reserve_examples(splits, cfg.train.tta))
    if choice is None:
        return cfg, None
    if not cfg.train.quiet:
        print(choice.summary(family_of(cfg.model).min_epochs), flush=True)
    record = {"size": choice.size, "epochs": choice.epochs if choice.probes else None,
              "probe_seconds": choice.probe_seconds, "probes": choice.probes}
    return replace(cfg, model=replace(cfg.model, size=choice.size)), record


def augment_for_budget(cfg: Config, splits: data_mod.Splits, epochs: float | None) -> tuple[Config, dict | None]:
    """``augment.auto``: flips alone when the budget gives >= FLIP_EPOCHS epochs, the user has not
    configured augmentation, and mirrored images keep their class."""
    aug = cfg.augment
    if not aug.auto or aug.enabled or epochs is None or splits.train.kind != "image" or epochs < FLIP_EPOCHS:
        return cfg, None
    retention = mirror_retention(splits.train.x, splits.train.y, len(splits.train.classes), cfg.train.seed)
    record = {"flip": retention >= MIRROR_KEEP, "mirror_retention": retention, "epochs": epochs}
    if not record["flip"]:
        return cfg, record
    if not cfg.train.quiet:
        print(f"augmentation: horizontal flips for the ~{epochs:.0f} epochs of the budget (mirrored "
              f"images keep {100 * retention:.0f}% of a class-mean classifier's accuracy)", flush=True)
    flips = replace(aug, enabled=True, flip=True, rotation=0.0, zoom=0.0, translate=0.0)
    return replace(cfg, augment=flips), record


def plan_for_budget(cfg: Config, splits: data_mod.Splits, input_shape: tuple[int, ...], classes: int,
                    mean: torch.Tensor, std: torch.Tensor, device: torch.device,
                    deadline: float | None) -> tuple[Config, dict]:
    """The config a time-budgeted run trains with, and what was decided (for timing.json)."""
    if deadline is None:
        return cfg, {"model_size": None, "auto_augment": None}
    cfg, sizing = size_for_budget(cfg, splits, input_shape, classes, mean, std, device, deadline)
    cfg, augment = augment_for_budget(cfg, splits, sizing["epochs"] if sizing else None)
    return cfg, {"model_size": sizing, "auto_augment": augment}
