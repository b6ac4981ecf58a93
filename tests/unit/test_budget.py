"""What a time budget decides: flips when mirrored images keep their class and the budget leaves a
few epochs, one-pixel shifts when it leaves many."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroclass.config import AugmentConfig, load_config
from neuroclass.data.augment import augment_batch
from neuroclass.data.dataset import Dataset
from neuroclass.data.split import Splits
from neuroclass.data.symmetry import MIRROR_KEEP, mirror_retention
from neuroclass.training.budget import (FLIP_EPOCHS, SHIFT_EPOCHS, augment_for_budget, plan_for_budget,
                                       reserve_examples, trained_shift)
from neuroclass.training.callbacks import TimeBudget
from neuroclass.training.state import ANNEAL_STEPS, StopReason, TrainState, read_stop_reason, steps_that_fit


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


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_budget_stops_before_a_step_that_would_cross_the_end_of_training():
    clock = Clock()
    state = TrainState(max_epochs=1, steps_per_epoch=100, deadline=10.0, clock=clock)
    for seconds in (0.5, 1.0, 1.0):  # the first step's one-off costs are left out
        clock.now += seconds
        state.record_step(seconds, 32)
    assert state.next_step_seconds() == 1.0
    assert state.end == 10.0 - 0.005 * 10.0  # nothing to evaluate after training: the margin only
    clock.now = state.end - 1.5  # room for one more step, not two
    TimeBudget().on_batch_end(state, None)
    assert not state.stop and state.steps_left() == 1 and state.progress() == 1.0  # the last step
    clock.now = state.end - 0.8
    TimeBudget().on_batch_end(state, None)
    assert state.stop and state.stop_reason is StopReason.TIME_BUDGET
    assert state.stop_detail.startswith("time budget reached after 3 steps")


def test_steps_that_fit_count_the_validation_pass_after_each_epoch():
    assert steps_that_fit(1.0, 0.1, 0.0, steps_per_epoch=5, done_in_epoch=0) == 10
    assert steps_that_fit(1.0, 0.1, 0.3, steps_per_epoch=5, done_in_epoch=0) == 7  # 5, a pass, 2
    assert steps_that_fit(1.0, 0.1, 0.3, steps_per_epoch=5, done_in_epoch=5) == 5  # a pass, 5, 0.2 s left
    assert steps_that_fit(0.45, 0.1, 0.3, steps_per_epoch=5, done_in_epoch=3) == 2  # the epoch's rest
    assert steps_that_fit(0.25, 0.1, 0.3, steps_per_epoch=5, done_in_epoch=5) == 0  # the pass does not fit
    assert steps_that_fit(0.3, 0.1, 0.0, steps_per_epoch=5, done_in_epoch=0) == 3  # 0.3 / 0.1 rounds below 3


def test_the_end_of_training_moves_earlier_no_faster_than_the_rate_can_anneal():
    clock = Clock()
    state = TrainState(max_epochs=1000, steps_per_epoch=10, deadline=20.0, clock=clock, val_examples=100,
                       reserve_examples=900)
    for _ in range(3):
        clock.now += 0.1
        state.record_step(0.1, 30)
    # before a validation pass: a third of a step per example, 1,000 examples
    assert state.finish_seconds() == pytest.approx(1000 * 0.1 / 30 / 3 + 0.1)
    assert state.end == pytest.approx(20.0 - state.finish_seconds())
    clock.now = 15.0
    state.record_validation(4.0, 100)  # 0.04 s an example: the finish needs 40 s, past the deadline
    assert state.end == pytest.approx(15.0 + ANNEAL_STEPS * 0.1)  # ANNEAL_STEPS more steps
    rates = []
    while state.steps_left() >= 1:
        rates.append(state.progress())
        clock.now += 0.1
        state.record_step(0.1, 30)
    assert len(rates) == ANNEAL_STEPS and rates[-1] == 1.0 and rates == sorted(rates)
    state.record_validation(0.4, 100)  # a faster pass: the end moves later at once
    assert state.end == pytest.approx(20.0 - 1000 * 0.004 - 0.1)


def test_stop_reasons_are_an_enum_and_the_first_request_wins():
    state = TrainState(max_epochs=1, steps_per_epoch=1)
    with pytest.raises(TypeError, match="StopReason"):
        state.request_stop("time budget reached", "")
    state.request_stop(StopReason.EARLY_STOPPING, "no improvement")
    state.request_stop(StopReason.TIME_BUDGET, "time")
    assert (state.stop_reason, state.stop_detail) == (StopReason.EARLY_STOPPING, "no improvement")
    assert read_stop_reason("time_budget") is StopReason.TIME_BUDGET
    assert read_stop_reason("time budget reached") is None and read_stop_reason(None) is None


def test_a_fixed_size_or_fixed_epochs_under_a_budget_still_get_flips(monkeypatch):
    import time

    from neuroclass.data.normalization import normalization_stats
    from neuroclass.training import sizing

    data = splits_of(bars(200, False))
    mean, std = normalization_stats(data.train.x)
    # the fixed size's speed is "timed" at 100 images/s: about 80 epochs of 140 images in 120 s,
    # whatever this machine's speed
    probed = []
    monkeypatch.setattr(sizing, "probe_speed", lambda cfg, *args: probed.append(cfg.size) or 100.0)
    far = time.perf_counter() + 120

    def plan(*overrides: str):
        cfg = load_config(overrides=["model.name=cnn", *overrides])
        return plan_for_budget(cfg, data, (1, 16, 16), 2, mean, std, torch.device("cpu"), far)

    cfg, record = plan("model.size=s")
    assert record["model_size"] is None and probed == ["s"]  # the size was not the budget's to pick
    assert record["auto_augment"]["flip"] is True and 50 < record["auto_augment"]["epochs"] < 120
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


def test_the_evaluation_cost_is_the_median_whole_pass_after_the_first():
    """The budget reserves time for many whole passes after training (every test-time view of the
    validation and test splits): their cost is that of whole passes, first batch included, and not
    the cheapest pass seen; a first pass's one-off costs count only until there is another pass."""
    state = TrainState(max_epochs=10, steps_per_epoch=10)
    assert state.eval_seconds_per_example == 0.0
    state.record_validation(4.0, 1000, head_seconds=3.0, head_examples=100)  # one-off 3 s in the head
    assert state.eval_seconds_per_example == pytest.approx(1.0 / 900)
    for seconds in (1.2, 1.0, 1.4):
        state.record_validation(seconds, 1000, head_seconds=0.15, head_examples=100)
    assert state.eval_seconds_per_example == pytest.approx(1.2 / 1000)  # not min (1.0) nor the first
