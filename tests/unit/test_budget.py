"""What a time budget decides: flips when mirrored images keep their class and the budget leaves a
few epochs, one-pixel shifts when it leaves many."""
from __future__ import annotations

import numpy as np
import torch

from neuroclass.config import AugmentConfig, load_config
from neuroclass.data.augment import augment_batch
from neuroclass.data.dataset import Dataset
from neuroclass.data.split import Splits
from neuroclass.data.symmetry import MIRROR_KEEP, mirror_retention
from neuroclass.training.budget import (FLIP_EPOCHS, SHIFT_EPOCHS, augment_for_budget, plan_for_budget,
                                       reserve_examples, trained_shift)


def bars(n: int, mirrored_pair: bool) -> Dataset:
    """16x16 images with noise: class 0 a bar near the left edge, class 1 near the right edge
    (``mirrored_pair``: each is the other's mirror image), or a centred cross vs a centred ring."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 16, 16, generator=g) * 60
    y = torch.arange(n) % 2
    if mirrored_pair:
        x[y == 0, :, :, 2:4] += 180
        x[y == 1, :, :, 12:14] += 180
    else:
        x[y == 0, :, 7:9, :] += 180
        x[y == 0, :, :, 7:9] += 180
        x[y == 1, :, 3:13, 3:5] += 180
        x[y == 1, :, 3:13, 11:13] += 180
    return Dataset(x.clamp(0, 255).to(torch.uint8), y, ["a", "b"], name="bars", kind="image", source="bars")


def splits_of(ds: Dataset) -> Splits:
    return Splits(train=ds, val=None, test=ds, indices={"train": np.arange(len(ds.y))}, method={})


def test_mirror_retention_tells_mirror_pairs_from_symmetric_classes():
    pair, symmetric = bars(200, True), bars(200, False)
    assert mirror_retention(pair.x, pair.y, 2) < 0.1  # every mirrored image lands in the other class
    assert mirror_retention(symmetric.x, symmetric.y, 2) > 0.95
    assert MIRROR_KEEP > 0.1


def test_a_few_epochs_turn_on_flips_alone_for_symmetric_data():
    cfg = load_config(overrides=["augment.rotation=15"])
    assert FLIP_EPOCHS < SHIFT_EPOCHS
    new, record = augment_for_budget(cfg, splits_of(bars(200, False)), SHIFT_EPOCHS - 1)
    assert record["flip"] is True and record["shift"] == 0
    assert new.augment.enabled and new.augment.flip and new.augment.shift == 0
    assert (new.augment.rotation, new.augment.zoom, new.augment.translate) == (0, 0, 0)


def test_many_epochs_add_one_pixel_shifts_even_where_mirroring_changes_the_class():
    cfg = load_config()
    new, record = augment_for_budget(cfg, splits_of(bars(200, False)), SHIFT_EPOCHS)
    assert (record["flip"], record["shift"]) == (True, 1)  # 16 px images: one pixel
    assert new.augment.enabled and new.augment.flip and new.augment.shift == 1
    new, record = augment_for_budget(cfg, splits_of(bars(200, True)), 50)
    assert (record["flip"], record["shift"]) == (False, 1)
    assert new.augment.enabled and not new.augment.flip and new.augment.shift == 1


def test_augmentation_stays_off_for_few_epochs_tiny_images_or_a_users_choice():
    cfg = load_config()
    assert augment_for_budget(cfg, splits_of(bars(200, False)), FLIP_EPOCHS - 1) == (cfg, None)
    tiny = bars(200, True)
    tiny.x = tiny.x[..., ::2, ::2].contiguous()  # 8x8: a pixel is an eighth of the side
    new, record = augment_for_budget(cfg, splits_of(tiny), 50)
    assert (record["flip"], record["shift"]) == (False, 0) and new.augment.enabled is False
    for overrides in (["augment.auto=false"], ["augment.enabled=true", "augment.flip=false"]):
        own = load_config(overrides=overrides)
        assert augment_for_budget(own, splits_of(bars(200, False)), 50) == (own, None)


def test_no_budget_decides_nothing():
    cfg = load_config()
    assert plan_for_budget(cfg, splits_of(bars(20, False)), (1, 16, 16), 2, None, None,
                           torch.device("cpu"), None) == (cfg, {"model_size": None, "auto_augment": None})


def test_flips_alone_mirror_some_samples_exactly():
    x = torch.rand(64, 1, 8, 8)
    out = augment_batch(x, AugmentConfig(enabled=True, rotation=0, zoom=0, translate=0),
                        torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all())  # no resampling blur: each sample exact
    assert 10 < int(mirrored.sum()) < 54  # per-sample coin flips


def test_time_budget_stops_before_a_step_that_would_cross_the_deadline():
    import time

    from neuroclass.training.callbacks import TimeBudget
    from neuroclass.training.state import TrainState

    state = TrainState(max_epochs=1, steps_per_epoch=100, step=3, train_seconds=2.5, first_step_seconds=0.5)
    assert state.next_step_seconds() == 1.0  # steps after the first: 2 s over 2 steps
    state.deadline = time.perf_counter() + 0.8  # room for the finish (nothing yet) but not a step
    TimeBudget().on_batch_end(state, None)
    assert state.stop and state.stop_reason == "time budget reached"
    roomy = TrainState(max_epochs=1, steps_per_epoch=100, step=3, train_seconds=2.5, first_step_seconds=0.5,
                       deadline=time.perf_counter() + 5.0)
    TimeBudget().on_batch_end(roomy, None)
    assert not roomy.stop


def test_a_fixed_size_or_fixed_epochs_under_a_budget_still_get_flips():
    import time

    from neuroclass.data.normalization import normalization_stats

    data = splits_of(bars(200, False))
    mean, std = normalization_stats(data.train.x)
    far = time.perf_counter() + 120  # a small net on 200 images: hundreds of epochs

    def plan(*overrides: str):
        cfg = load_config(overrides=["model.name=cnn", *overrides])
        return plan_for_budget(cfg, data, (1, 16, 16), 2, mean, std, torch.device("cpu"), far)

    cfg, record = plan("model.size=s")
    assert record["model_size"] is None  # the size was not the budget's to pick
    assert record["auto_augment"]["flip"] is True and record["auto_augment"]["epochs"] > 50
    assert cfg.augment.enabled and cfg.augment.flip and cfg.model.size == "s"
    cfg, record = plan(f"train.epochs={FLIP_EPOCHS}")
    assert record["auto_augment"]["epochs"] == FLIP_EPOCHS and cfg.augment.enabled
    cfg, record = plan(f"train.epochs={FLIP_EPOCHS - 1}")
    assert record["auto_augment"] is None and not cfg.augment.enabled


def test_the_reserve_holds_back_every_view_the_test_time_augmentation_may_use():
    ds = bars(100, False)
    splits = Splits(train=ds, val=bars(30, False), test=ds, indices={}, method={})  # 100 test, 30 val
    assert reserve_examples(splits, "none") == 130
    assert reserve_examples(splits, "flip") == reserve_examples(splits, "auto") == 260
    assert reserve_examples(splits, "auto", shift=1) == reserve_examples(splits, "flip+shift") == 1300
    assert reserve_examples(splits, "shift") == 650
    cfg = load_config()
    new, _ = augment_for_budget(cfg, splits_of(bars(200, False)), SHIFT_EPOCHS)
    assert trained_shift(cfg) == 0 and trained_shift(new) == 1
