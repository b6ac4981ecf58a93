"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks",
section 3.3): train for a few hundred steps while the rate grows exponentially from tiny to huge,
and read a good rate off the loss curve.

``lr_range_test`` records the loss of every step (and its exponential moving average, bias-corrected
as in Adam) and stops once the smoothed loss passes DIVERGE times its minimum; ``suggest_lr`` takes
the rate at the curve's minimum and suggests a tenth of it, the rule fastai popularised ("lr_min /
10": where the loss still falls fast, an order of magnitude before it turns), provided the loss fell
at all.

Example::

    curve = lr_range_test(model, batches, OptimConfig(), steps=100)
    suggest_lr(curve.lrs, curve.smoothed).lr
    # -> 0.003...
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from neuroclass.config import OptimConfig
from neuroclass.errors import NeuroclassError
from neuroclass.training.optim import make_optimizer, set_lr

START_LR, END_LR = 1e-7, 10.0  # the rates swept, exponentially
DIVERGE = 4.0  # the sweep stops once the smoothed loss is this many times its minimum
SMOOTHING = 0.05  # weight of each new step in the moving average of the loss
MIN_DROP = 0.02  # the smoothed loss must fall at least this share below its start to suggest a rate


@dataclass
class LRCurve:
    """The sweep: the rate, loss and smoothed loss of each step, and whether it stopped because the
    loss diverged (else it ran every step)."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    diverged: bool = False


@dataclass(frozen=True)
class Suggestion:
    """``lr``: the suggested ``optim.lr`` (a tenth of ``lr_at_min``, where the smoothed loss was
    lowest) and ``loss_at_min``, that lowest smoothed loss."""

    lr: float
    lr_at_min: float
    loss_at_min: float


def suggest_lr(lrs: list[float], smoothed: list[float]) -> Suggestion | None:
    """A tenth of the rate at the smoothed loss's minimum; None when the loss never fell MIN_DROP
    below its start (a curve that only rises or stays flat says nothing about the rate), or when
    the minimum is the first rate swept (the sweep started too high). NeuroclassError when the
    lists differ in length or are empty.

    >>> lrs = list(np.logspace(-5, 0, 50))
    >>> loss = [2.0 - 1.5 * math.exp(-((math.log10(r) + 2) ** 2)) for r in lrs]  # lowest at 1e-2
    >>> round(math.log10(suggest_lr(lrs, loss).lr), 1)
    -3.0
    """
    if not lrs or len(lrs) != len(smoothed):
        raise NeuroclassError(f"suggest_lr needs one smoothed loss per rate; got {len(lrs)} rates and "
                              f"{len(smoothed)} losses")
    values = np.asarray(smoothed, dtype=float)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    best = int(np.nanargmin(np.where(finite, values, np.nan)))
    if best == 0 or values[best] > values[0] * (1 - MIN_DROP):
        return None
    return Suggestion(lr=lrs[best] / 10, lr_at_min=lrs[best], loss_at_min=float(values[best]))


def lr_range_test(model: nn.Module, batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
                  optim_cfg: OptimConfig, steps: int = 100,
                  loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                  start: float = START_LR, end: float = END_LR) -> LRCurve:
    """Train ``model`` for up to ``steps`` steps on ``batches`` (inputs, class indices), the rate
    growing from ``start`` to ``end`` by the same factor each step, with ``optim_cfg``'s optimizer
    (its ``lr`` unused); record each step's loss. Changes the model's weights: pass a fresh one.
    ``loss_fn(output, target)``: default the cross-entropy of logits. NeuroclassError for fewer
    than 2 steps or ``start`` >= ``end``."""
    if steps < 2 or not 0 < start < end:
        raise NeuroclassError(f"the learning-rate range test needs >= 2 steps and 0 < start < end; got "
                              f"steps={steps}, start={start:g}, end={end:g}")
    loss_fn = loss_fn or nn.functional.cross_entropy
    optimizer = make_optimizer(model, optim_cfg)
    growth = (end / start) ** (1 / (steps - 1))
    curve, average = LRCurve(), 0.0
    model.train()
    for step, (x, y) in zip(range(steps), batches):
        lr = start * growth ** step
        set_lr(optimizer, lr)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        average = (1 - SMOOTHING) * average + SMOOTHING * value
        smoothed = average / (1 - (1 - SMOOTHING) ** (step + 1))  # bias-corrected, as Adam's moments
        curve.lrs.append(lr)
        curve.losses.append(value)
        curve.smoothed.append(smoothed)
        if not math.isfinite(smoothed) or smoothed > DIVERGE * min(curve.smoothed):
            curve.diverged = True
            break
    return curve
