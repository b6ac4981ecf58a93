"""What a time budget decides before training: the model's size and the augmentation it affords.

``model.size=auto`` times the family's sizes on this machine and keeps the largest that gets enough
epochs (models/sizing.py). When the budget leaves the model a few epochs, ``augment.auto`` turns on
horizontal flips if mirrored images keep their class (data/symmetry.py): a budgeted network reaches
its best validation accuracy before the last epoch and then starts to memorise, and the mirror
images both slow that and make the test-time flip (inference/views.py) a two-view average. Measured
on Fashion-MNIST, 2 CPU cores, with averaged weights (train.ema), test accuracy without -> with
flips: 1 minute (4 epochs) 91.62% -> 91.78%; 3 minutes (6 epochs) 92.80% -> 93.01% and, seed 1,
93.00% -> 93.15%; 18 epochs 92.9% -> 93.6%. From SHIFT_EPOCHS on it adds random one-pixel shifts,
which slow shorter runs (10 minutes, 12-13 epochs, flips alone -> flips and shifts: 93.98% ->
94.19%, seed 1 93.29% -> 93.94%); a model trained with shifts may then predict by averaging shifted
views (inference/views.py), which the budget holds back time for. Everything decided is written to
the run's config.yaml, so the saved config rebuilds the same network and training without the
budget's help.
"""
from __future__ import annotations

import logging
import time
from typing import Callable
from dataclasses import replace

import torch

from neuroclass import data as data_mod
from neuroclass.config import Config
from neuroclass.data.symmetry import MIRROR_KEEP, mirror_retention
from neuroclass.inference.views import PASSES
from neuroclass.models import create
from neuroclass.models.sizing import AUTO, family_of
from neuroclass.training.resolution import required_examples
from neuroclass.training.sizing import choose_size, timed_epochs
from neuroclass.training.families import is_classical, is_glassbox
from neuroclass.training.finetune import transfer_source
from neuroclass.training.trainer import resolve_batch_size

log = logging.getLogger(__name__)  # the choices, at INFO; the CLI prints them

# the fewest epochs for which flips were measured to pay; after one or two epochs a network has
# not yet learnt the mirrored shoes and bags, and flips slow it down
FLIP_EPOCHS = 4
# a one-pixel shift slowed a 6-epoch run (Fashion-MNIST, 3 minutes: 93.01% with flips alone, 92.46%
# with both) and helped a 12-epoch one (10 minutes: 94.19%, flips alone 93.98%)
SHIFT_EPOCHS = 10
# photos trained from scratch: random resized crops and light colour changes (the usual ImageNet
# recipe, milder: a few hundred images cannot afford torchvision's 8% crops), no rotation
PHOTO_AUGMENT = {"crop": 0.35, "brightness": 0.2, "contrast": 0.2, "saturation": 0.2,
                 "rotation": 0.0, "zoom": 0.0, "translate": 0.0, "shift": 0}


def reserve_examples(splits: data_mod.Splits, tta: str, shift: int = 0) -> int:
    """Examples evaluated after training, in single-pass units, for the time budget to hold back:
    the test split, and the validation passes that choose the test-time augmentation and fit the
    temperature on the chosen logits, each as many times as the policy has views ("auto": the
    largest view set it may choose, flip+shift where the model trains with ``shift`` px shifts)."""
    n_val = len(splits.val) if splits.val is not None else 0
    n_test = len(splits.test) if splits.test is not None else 0  # in-memory training has none
    passes = PASSES[tta] if tta in PASSES else PASSES["flip+shift" if shift else "flip"]
    return passes * (n_test + n_val)


def trained_shift(cfg: Config) -> int:
    """Pixels of the random shifts the configured training applies (0: none)."""
    return cfg.augment.shift if cfg.augment.enabled else 0


def timing_args(cfg: Config, splits: data_mod.Splits, input_shape: tuple[int, ...], classes: int,
                mean: torch.Tensor, std: torch.Tensor, device: torch.device, deadline: float) -> tuple:
    """What ``choose_size`` and ``timed_epochs`` take after the model config: how to build a
    network, the run's batch, device and layout, the seconds left, and the examples to pass over."""
    return (lambda m: create(m, input_shape, classes, mean, std), input_shape,
            resolve_batch_size(cfg.train.batch_size, len(splits.train)), device, cfg.train.channels_last,
            deadline - time.perf_counter(), len(splits.train), len(splits.val) if splits.val is not None else 0,
            reserve_examples(splits, cfg.train.tta, trained_shift(cfg)))


def size_for_budget(cfg: Config, splits: data_mod.Splits, input_shape: tuple[int, ...], classes: int,
                    mean: torch.Tensor, std: torch.Tensor, device: torch.device,
                    deadline: float, photos: bool = False) -> tuple[Config, dict | None]:
    """``model.size=auto``: the config at the largest size this machine trains for enough epochs
    (the family's ``min_epochs``; for ``photos`` also MIN_EXAMPLES examples, as for the input
    side) in the time left, and a record of the timings (None when the size is fixed: by the config,
    by a starting point (--from, --weights, --pretrained), or by a family without sizes; and when
    train.epochs sets the length of training, so that the budget is only a limit)."""
    if cfg.model.size != AUTO or cfg.train.epochs or transfer_source(cfg):
        return cfg, None
    timing = timing_args(cfg, splits, input_shape, classes, mean, std, device, deadline)
    min_epochs, examples = family_of(cfg.model).min_epochs, None
    if photos:
        examples = required_examples(len(splits.train), min_epochs)
        min_epochs = examples / max(1, len(splits.train))
    choice = choose_size(cfg.model, *timing, min_epochs=min_epochs)
    if choice is None:
        return cfg, None
    log.info("%s", choice.summary(min_epochs, examples))
    record = {"size": choice.size, "epochs": choice.epochs if choice.probes else None,
              "probe_seconds": choice.probe_seconds, "probes": choice.probes}
    return replace(cfg, model=replace(cfg.model, size=choice.size)), record


def epochs_of_fixed_size(cfg: Config, splits: data_mod.Splits, input_shape: tuple[int, ...], classes: int,
                         mean: torch.Tensor, std: torch.Tensor, device: torch.device,
                         deadline: float) -> float | None:
    """The epochs a budgeted run gets when the budget does not pick the size: train.epochs where it
    sets the length of training, else estimated from a few timed steps of the configured model (as
    model.size=auto does for each size). None for tables and for a starting point (--from,
    --weights, --pretrained), whose fine-tuning differs from what the steps would time."""
    if cfg.train.epochs:
        return float(cfg.train.epochs)
    if splits.train.kind != "image" or transfer_source(cfg):
        return None
    timing = timing_args(cfg, splits, input_shape, classes, mean, std, device, deadline)
    return timed_epochs(cfg.model, *timing)[1]


def auto_shift(image_side: int) -> int:
    """Pixels of the whole-pixel shift ``augment.auto`` adds: about 1/28 of the image's side, so
    one pixel at 28-32 px, none for 8x8 digits (where one pixel is an eighth of the image).

    >>> [auto_shift(side) for side in (8, 16, 28, 32, 64, 224)]
    [0, 1, 1, 1, 2, 8]
    """
    return round(image_side / 28)


def augment_for_budget(cfg: Config, splits: data_mod.Splits, epochs: float | None,
                       photos: bool = False) -> tuple[Config, dict | None]:
    """``augment.auto``, when the user has not configured augmentation: for ``photos`` always the
    photo set (PHOTO_AUGMENT, flips where mirrored images keep their class); for other images,
    when the budget leaves ``epochs``, horizontal flips from FLIP_EPOCHS epochs on where mirrored
    images keep their class, and small whole-pixel shifts from SHIFT_EPOCHS on (label-preserving
    for any image)."""
    aug = cfg.augment
    if not aug.auto or aug.enabled or splits.train.kind != "image":
        return cfg, None
    if not photos and (epochs is None or epochs < FLIP_EPOCHS):
        return cfg, None
    retention = mirror_retention(splits.train.x, splits.train.y, len(splits.train.classes), cfg.train.seed)
    flip = retention >= MIRROR_KEEP
    if photos:
        log.info("augmentation for photos: random resized crops (%.0f-100%% of the area), %s"
                 "brightness, contrast and saturation +-%.0f%%", 100 * PHOTO_AUGMENT["crop"],
                 "horizontal flips, " if flip else "", 100 * PHOTO_AUGMENT["brightness"])
        return (replace(cfg, augment=replace(aug, enabled=True, flip=flip, **PHOTO_AUGMENT)),
                {"photos": True, "flip": flip, "shift": 0, "mirror_retention": retention, "epochs": epochs})
    shift = auto_shift(min(splits.train.x.shape[-2:])) if epochs >= SHIFT_EPOCHS else 0
    record = {"flip": flip, "shift": shift, "mirror_retention": retention, "epochs": epochs}
    if not (flip or shift):
        return cfg, record
    chosen = ([f"horizontal flips (mirrored images keep {100 * retention:.0f}% of a class-mean "
               "classifier's accuracy)"] if flip else []) + \
             ([f"random shifts of up to {shift} px"] if shift else [])
    log.info("augmentation for the ~%.0f epochs of the budget: %s", epochs, " and ".join(chosen))
    auto = replace(aug, enabled=True, flip=flip, rotation=0.0, zoom=0.0, translate=0.0, shift=shift)
    return replace(cfg, augment=auto), record


def plan_for_budget(cfg: Config, splits: data_mod.Splits, input_shape: tuple[int, ...], classes: int,
                    mean: torch.Tensor, std: torch.Tensor, device: torch.device,
                    deadline: float | None, clock: Callable[[], float] = time.perf_counter,
                    photos: bool = False) -> tuple[Config, dict]:
    """The config a time-budgeted run trains with, and what was decided (for timing.json).
    ``deadline`` is a reading of ``clock`` (seconds). ``photos``: the data are photos
    (data/survey.py), which get the photo augmentation with or without a budget. A classical
    family and the glass-box network (training/families.py) have no size to pick and train on no
    augmented batches."""
    if is_classical(cfg.model.name) or is_glassbox(cfg.model.name):
        return cfg, {"model_size": None, "auto_augment": None}
    if deadline is None:
        cfg, augment = augment_for_budget(cfg, splits, None, photos)
        return cfg, {"model_size": None, "auto_augment": augment}
    # the plan times real training steps with time.perf_counter: the deadline in its units
    deadline = time.perf_counter() + (deadline - clock())
    cfg, sizing = size_for_budget(cfg, splits, input_shape, classes, mean, std, device, deadline, photos)
    epochs = sizing["epochs"] if sizing else None
    if epochs is None and cfg.augment.auto and not cfg.augment.enabled and not photos:  # only time what will be used
        epochs = epochs_of_fixed_size(cfg, splits, input_shape, classes, mean, std, device, deadline)
    cfg, augment = augment_for_budget(cfg, splits, epochs, photos)
    return cfg, {"model_size": sizing, "auto_augment": augment}
