"""neuroclass.training.throughput: FLOP counting and the speed measurements on tiny models."""
from __future__ import annotations

import time

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


def test_flops_of_a_linear_layer_are_two_per_multiply_add():
    assert count_flops(nn.Linear(784, 10), (784,)) == 2 * 784 * 10


def test_flops_of_a_conv_layer_and_training_mode_is_restored():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))  # 26x26 outputs, 2 channels, 9 MACs each
    model.train()
    assert count_flops(model, (1, 28, 28)) == 2 * 26 * 26 * 2 * 9
    assert model.training


def test_matmul_peak_is_positive():
    assert matmul_peak_gflops(size=128, repeats=2) > 0


@pytest.mark.parametrize("measure", [measure_training, measure_inference])
def test_measurements_return_positive_images_per_second_quickly(measure):
    start = time.perf_counter()
    rate = measure(tiny_cnn(), (1, 8, 8), batch_size=16, steps=3, device="cpu", warmup=1)
    assert rate > 0
    assert time.perf_counter() - start < 2.0  # well under 1 s when idle; room for a busy CI machine


def test_measure_training_works_on_feature_rows():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    assert measure_training(model, (5,), batch_size=8, steps=2, warmup=1) > 0
