"""An exponential moving average (EMA) of a model's weights, the model that training hands back.

Each optimizer step moves the average a small step towards the live weights (and BatchNorm
statistics). Averaging over the last few hundred steps cancels much of the noise of a high learning
rate, so the average is more accurate than the live weights while the rate is high and about as
accurate once it has annealed: on Fashion-MNIST the default cnn reached 91% test accuracy one to two
epochs sooner (benchmarks/RESULTS.md). The averaging itself is torch's ``AveragedModel``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def ema_decay(decay: float, updates: int) -> float:
    """The decay of update number ``updates`` (0-based): (1 + n) / (10 + n), at most ``decay``.

    The ramp keeps a short run from being an average dominated by its first, untrained steps.

    >>> ema_decay(0.99, 0), round(ema_decay(0.99, 90), 3), ema_decay(0.99, 5000)
    (0.1, 0.91, 0.99)
    """
    return min(decay, (1 + updates) / (10 + updates))


class WeightAverage:
    """The EMA of ``model``'s parameters and buffers; ``module`` is the averaged copy.

    Example::

        average = WeightAverage(model, decay=0.99)
        average.update(model)  # after each optimizer step
        average.copy_to(model)  # at the end of training
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay, self.updates = decay, 0
        self.average = AveragedModel(model, multi_avg_fn=self._blend, use_buffers=True)
        self.module.requires_grad_(False)

    @property
    def module(self) -> nn.Module:
        return self.average.module

    def _blend(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _count) -> None:
        # the ramp needs the update number as a Python int; AveragedModel keeps its count as a tensor
        get_ema_multi_avg_fn(ema_decay(self.decay, self.updates - 1))(averaged, current, _count)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        self.average.update_parameters(model)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Put the averaged weights and buffers into ``model`` (same architecture)."""
        model.load_state_dict(self.module.state_dict())
