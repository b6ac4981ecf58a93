"""Speed measurements: FLOPs per image, training and inference images/s, and the matmul peak.

Achieved FLOP/s (FLOPs per image x images/s) against a fp32 matmul peak measured on the same
machine tells how much of the hardware a model uses; see benchmarks/throughput.py.

>>> model = nn.Linear(784, 10)
>>> count_flops(model, (784,))
15680
"""
from __future__ import annotations

import contextlib
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from neuroclass.device import fused_optimizer, keep_freed_memory, memory_format
from neuroclass.runs.glassbox_module import GlassboxModule


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inputs(input_shape: tuple[int, ...], batch_size: int, device: torch.device) -> torch.Tensor:
    """Random inputs like the Trainer feeds: uint8 for images (C, H, W), float rows otherwise."""
    if len(input_shape) == 3:
        x = torch.randint(0, 256, (batch_size, *input_shape), dtype=torch.uint8, device=device)
        return x.contiguous(memory_format=memory_format(device, True, x.ndim))
    return torch.randn(batch_size, *input_shape, device=device)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs for one example of ``input_shape`` (a multiply-add counts 2), eval mode.

    Counts matrix products and convolutions, as torch.utils.flop_counter does; training costs
    about 3x this (forward + backward for inputs and weights).
    """
    if isinstance(model, GlassboxModule):  # a NumPy forward pass: nothing for torch's counter to see
        return model.flops_per_example()
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape, device=param.device if param is not None else "cpu")
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def matmul_peak_gflops(size: int = 2048, repeats: int = 5, device: torch.device | str = "cpu",
                       clock: Callable[[], float] = time.perf_counter) -> float:
    """Best fp32 GFLOP/s of ``repeats`` size x size matmuls: the practical ceiling of this machine.

    ``clock`` returns seconds; each matmul is timed by two reads of it.
    """
    device = torch.device(device)
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)  # warm up: thread pool, caches, kernel selection
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        torch.mm(a, b)
        _sync(device)
        best = min(best, clock() - start)
    return 2 * size ** 3 / best / 1e9


def measure_training(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, steps: int,
                     device: torch.device | str = "cpu", warmup: int = 3, channels_last: bool = True,
                     clock: Callable[[], float] = time.perf_counter) -> float:
    """Training images/s: forward + cross-entropy + backward + AdamW step on random data, with
    the Trainer's allocator setting and fused optimizer where they apply.

    ``steps`` steps of ``batch_size`` images are timed one by one with ``clock`` (seconds), after
    ``warmup`` untimed steps; the speed is that of the median step. Changes the model's weights (it trains); pass a fresh or copied model.
    """
    device = torch.device(device)
    with keep_freed_memory() if device.type == "cpu" else contextlib.nullcontext():
        return _training_rate(model, input_shape, batch_size, steps, device, warmup, channels_last, clock)


def _training_rate(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, steps: int,
                   device: torch.device, warmup: int, channels_last: bool,
                   clock: Callable[[], float]) -> float:
    fmt = memory_format(device, channels_last, len(input_shape) + 1)
    model.to(device=device, memory_format=fmt).train()
    x = _inputs(input_shape, batch_size, device)
    with torch.no_grad():
        num_classes = model.eval()(x[:2]).shape[1]
    model.train()
    y = torch.randint(0, num_classes, (batch_size,), device=device)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3, fused=fused_optimizer(params) or None)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    _sync(device)
    seconds = []
    for _ in range(steps):
        start = clock()
        step()
        _sync(device)
        seconds.append(clock() - start)
    # the median step: one step slowed by another process, a page fault or a late kernel choice
    # would otherwise set the speed (probes time a few steps: training/sizing.py)
    return batch_size / statistics.median(seconds)


def measure_inference(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, steps: int,
                      device: torch.device | str = "cpu", warmup: int = 2, channels_last: bool = True,
                      clock: Callable[[], float] = time.perf_counter) -> float:
    """Inference images/s: eval mode, ``torch.inference_mode``, random inputs of ``batch_size``;
    ``steps`` passes are timed by two reads of ``clock`` (seconds), after ``warmup`` untimed ones."""
    device = torch.device(device)
    fmt = memory_format(device, channels_last, len(input_shape) + 1)
    model.to(device=device, memory_format=fmt).eval()
    x = _inputs(input_shape, batch_size, device)
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        _sync(device)
        start = clock()
        for _ in range(steps):
            model(x)
        _sync(device)
    return steps * batch_size / (clock() - start)
