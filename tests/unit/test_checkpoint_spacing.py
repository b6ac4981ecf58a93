"""Epoch-end checkpoints spaced to take at most train.checkpoint_share of training time (fake clock)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig
from neuroclass.data.blocks import make_blocks
from neuroclass.models import create
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.checkpoint import checkpoint_folders
from neuroclass.training.checkpoint_writer import CheckpointWriter
from neuroclass.training.state import TrainState
from neuroclass.training.trainer import Trainer

DATA = make_blocks(n=200, size=16, task="colour", seed=0)
TRAIN, VAL = DATA.subset(np.arange(160)), DATA.subset(np.arange(160, 200))
EPOCHS = TrainConfig(epochs=12, batch_size=16)  # 10 steps an epoch


class FakeTime:
    """A clock that steps take ``step`` seconds of and checkpoint writes ``write`` seconds of."""

    def __init__(self, step: float, write: float) -> None:
        self.now, self.step, self.write = 0.0, step, write

    def __call__(self) -> float:
        return self.now

    def before_rename(self, tmp) -> None:  # inside the timed write
        self.now += self.write


class Tick(Callback):
    def __init__(self, time: FakeTime) -> None:
        self.time = time

    def on_batch_end(self, state, model):
        self.time.now += self.time.step


def written_epochs(step: float, write: float, share: float, tmp_path, stop_at: int | None = None) -> list:
    """The "epoch" (epochs completed) of each checkpoint a 12-epoch fit writes."""
    torch.manual_seed(0)
    model = create(ModelConfig(name="mlp", options={"hidden": [8]}), DATA.input_shape, len(DATA.classes),
                   torch.zeros(3, 1, 1), torch.ones(3, 1, 1))
    time = FakeTime(step, write)
    writer = CheckpointWriter(tmp_path, clock=time, keep=100, before_rename=time.before_rename, share=share)
    stop = StopRequest()
    callbacks = [Tick(time), stop, writer]
    if stop_at is not None:
        callbacks.insert(0, StopAt(stop, stop_at))
    Trainer(EPOCHS, OptimConfig(), AugmentConfig(), torch.device("cpu"), callbacks=callbacks).fit(model, TRAIN, VAL)
    return [json.loads((p / "state.json").read_text())["epoch"] for _, p in checkpoint_folders(tmp_path)]


class StopAt(Callback):
    def __init__(self, stop: StopRequest, step: int) -> None:
        self.stop, self.step = stop, step

    def on_batch_end(self, state, model):
        if state.step == self.step:
            self.stop.request("test stop")


def test_tiny_epochs_space_their_checkpoints_and_long_epochs_write_after_each(tmp_path):
    # 1.25 s epochs, 1 s writes, share 0.2: a write once the last is 1 x 0.8 / 0.2 = 4 s old. The
    # first epoch's write always happens (it measures the cost): after epochs 1, 5 and 9
    assert written_epochs(0.125, 1.0, 0.2, tmp_path / "tiny") == [1, 5, 9]
    # 10 s epochs: older than 4 s at every epoch's end
    assert written_epochs(1.0, 1.0, 0.2, tmp_path / "long") == list(range(1, 13))
    # share 1: after every epoch, however tiny
    assert written_epochs(0.125, 1.0, 1.0, tmp_path / "every") == list(range(1, 13))


def test_an_interrupt_always_writes_between_spaced_checkpoints(tmp_path):
    # stopped at step 32 (epoch 4 in progress): 3 epochs done, the last write after epoch 1
    assert written_epochs(0.125, 1.0, 0.2, tmp_path, stop_at=32) == [1, 3]


def test_the_budget_reserves_the_writes_the_spacing_makes():
    def state(share):
        s = TrainState(max_epochs=100, steps_per_epoch=10, deadline=100.0, clock=lambda: 0.0,
                       checkpoint_seconds=1.0, epoch_checkpoint_share=share)
        s.recent_steps.extend([0.125, 0.125])  # 1.25 s epochs
        return s

    # every epoch: the whole 1 s write; share 0.2: at most a quarter of an epoch's 1.25 s
    assert state(1.0).epoch_write_seconds() == 1.0 and state(0.2).epoch_write_seconds() == pytest.approx(0.3125)
    assert state(0.2).finish_seconds() == pytest.approx(0.3125 + 0.5)  # the write and the margin
    # fewer steps fit where every epoch's write is reserved
    assert state(1.0).steps_left() < state(0.2).steps_left()
    with pytest.raises(ValueError, match="share must be in"):
        CheckpointWriter(".", share=0.0)
