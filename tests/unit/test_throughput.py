"""neuroclass.training.throughput: FLOP counting against hand counts, and the speed measurements
timed by a fake clock, so that every rate is an exact number and no test depends on machine speed."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroclass.config import ModelConfig
from neuroclass.training.throughput import (count_flops, matmul_peak_gflops, measure_inference,
                                              measure_training)
from neuroclass.models import create


def tiny_cnn() -> nn.Module:
    cfg = ModelConfig(name="cnn", options={"channels": [4], "hidden": 8})
    return create(cfg, (1, 8, 8), 3, torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))


class FakeClock:
    """Returns ``times`` one per read; records how many forward passes ``model`` had made at each read."""

    def __init__(self, times: list[float], model: nn.Module | None = None):
        self.times, self.forwards_at_read, self.forwards = list(times), [], 0
        if model is not None:
            model.register_forward_hook(self._count)

    def _count(self, module, inputs, output) -> None:
        self.forwards += 1

    def __call__(self) -> float:
        assert self.times, "the clock was read more often than the measurement should read it"
        self.forwards_at_read.append(self.forwards)
        return self.times.pop(0)


def test_flops_of_a_linear_layer_are_two_per_multiply_add():
    assert count_flops(nn.Linear(784, 10), (784,)) == 2 * 784 * 10


def test_flops_of_a_conv_layer_and_training_mode_is_restored():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))  # 26x26 outputs, 2 channels, 9 MACs each
    model.train()
    assert count_flops(model, (1, 28, 28)) == 2 * 26 * 26 * 2 * 9
    assert model.training


def test_flops_of_a_conv_net_are_the_hand_count_per_image():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4x8x8 -> 4x4x4
                          nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),  # 6x2x2, 36 MACs each
                          nn.Flatten(), nn.Linear(24, 5), nn.ReLU(), nn.Linear(5, 3))
    macs = 4 * 8 * 8 * (3 * 9) + 6 * 2 * 2 * (4 * 9) + 24 * 5 + 5 * 3
    assert count_flops(model, (3, 8, 8)) == 2 * macs == 15822


def test_flops_of_the_tiny_neuroclass_cnn():
    # conv 1->4 3x3 (padding 1) on 8x8, pool to 4x4, linear 64->8, linear 8->3; normalisation,
    # pooling and activations are not matrix products and are not counted
    assert count_flops(tiny_cnn(), (1, 8, 8)) == 2 * (4 * 8 * 8 * 9 + 64 * 8 + 8 * 3)


def test_matmul_peak_uses_the_fastest_repeat():
    # three repeats timed 0.5 s, 0.25 s and 0.4 s: the peak is the 0.25 s one
    clock = FakeClock([10.0, 10.5, 11.0, 11.25, 12.0, 12.4])
    assert matmul_peak_gflops(size=64, repeats=3, clock=clock) == pytest.approx(2 * 64 ** 3 / 0.25 / 1e9)
    assert clock.times == []  # two reads per repeat, none for the warm-up


def test_inference_images_per_second_time_only_the_measured_passes():
    model = tiny_cnn()
    clock = FakeClock([100.0, 100.5], model)
    rate = measure_inference(model, (1, 8, 8), batch_size=16, steps=3, device="cpu", warmup=2, clock=clock)
    assert rate == pytest.approx(3 * 16 / 0.5)  # 48 images in 0.5 s
    assert clock.forwards_at_read == [2, 2 + 3]  # after 2 warm-up passes, then after the 3 timed


def test_training_speed_is_the_median_step_after_the_warm_up():
    model = tiny_cnn()
    # three timed steps of 0.2 s, 0.7 s (another process took the cores) and 0.1 s
    clock = FakeClock([100.0, 100.2, 100.2, 100.9, 100.9, 101.0], model)
    rate = measure_training(model, (1, 8, 8), batch_size=16, steps=3, device="cpu", warmup=2, clock=clock)
    assert rate == pytest.approx(16 / 0.2)
    # the class-count probe and 2 warm-up steps untimed, then two reads around each step
    assert clock.forwards_at_read == [3, 4, 4, 5, 5, 6]


def test_measure_training_on_feature_rows_trains_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    before = [p.detach().clone() for p in model.parameters()]
    rate = measure_training(model, (5,), batch_size=8, steps=2, warmup=1,
                            clock=FakeClock([0.0, 0.004, 0.004, 0.008]))
    assert rate == pytest.approx(8 / 0.004)
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
