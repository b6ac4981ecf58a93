"""The model size that fits a time budget, picked by timing real training steps on this machine.

With a time budget, ``model.size=auto`` times a few training steps of each of the family's sizes
(models/sizing.py), cheapest first, and keeps the largest that still gets ``min_epochs`` passes over
the training data before the budget ends: on a fast machine or a small dataset the budget buys a
bigger network, on a slow one a smaller network that still converges.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from neuroclass.config import ModelConfig
from neuroclass.errors import NeuroclassError
from neuroclass.models.sizing import family_of, size_names, sized_options
from neuroclass.training.throughput import measure_training

PROBE_WARMUP, PROBE_STEPS = 2, 5  # untimed, timed training steps per size (median step: throughput.py)
# an evaluation example costs about a third of a training example (forward only)
EVAL_COST = 1 / 3


@dataclass
class SizeChoice:
    """What ``auto`` picked and why: every size it timed, with the epochs the budget allows."""

    size: str
    epochs: float = 0.0  # what the budget allows the chosen size, as estimated
    probes: list = field(default_factory=list)  # {"size", "examples_per_second", "epochs"}
    probe_seconds: float = 0.0

    def summary(self, min_epochs: float, examples: int | None = None) -> str:
        """The run's line about the size; ``examples``: the training examples ``min_epochs`` stands
        for, when a count of examples set it (photos: training/resolution.py)."""
        tried = ", ".join(f"{p['size']} {p['examples_per_second']:,.0f} examples/s ~{p['epochs']:.1f} epochs"
                          for p in self.probes)
        least = f"{min_epochs:g}" if min_epochs == int(min_epochs) else f"{min_epochs:,.0f}"
        if examples:
            least = f"{least} epochs = {examples:,} examples"
        else:
            least = f"{least} epochs"
        return (f"model size {self.size} for the time budget (largest with >= {least}; "
                f"timed {tried})")


def probe_speed(cfg: ModelConfig, build, input_shape: tuple[int, ...], batch_size: int,
                device: torch.device, channels_last: bool,
                clock: Callable[[], float] = time.perf_counter) -> float:
    """Training images/s of ``build(cfg)`` on random inputs, a few real steps on ``device``, each
    timed by two readings of ``clock`` (seconds)."""
    # a probe draws weights and inputs from torch's generators; the run's own draws must not
    # depend on how many sizes were timed
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model = build(cfg)
        return measure_training(model, input_shape, batch_size, PROBE_STEPS, device,
                                warmup=PROBE_WARMUP, channels_last=channels_last, clock=clock)


def epochs_within(seconds: float, speed: float, n_train: int, n_val: int, n_final: int) -> float:
    """Passes over ``n_train`` examples that fit in ``seconds`` at ``speed`` training examples/s,
    after the final evaluation of ``n_final`` examples and with ``n_val`` validated each epoch.

    >>> round(epochs_within(100, 1000, 9000, 3000, 3000), 2)  # (100,000 - 1,000) / (9,000 + 1,000)
    9.9
    """
    budget = seconds * speed - n_final * EVAL_COST
    return max(0.0, budget / (n_train + n_val * EVAL_COST))


def timed_epochs(cfg: ModelConfig, build, input_shape: tuple[int, ...], batch_size: int,
                 device: torch.device, channels_last: bool, seconds: float,
                 n_train: int, n_val: int, n_final: int) -> tuple[float, float]:
    """(training images/s, epochs within ``seconds``) of ``build(cfg)``, timed on this machine."""
    speed = probe_speed(cfg, build, input_shape, batch_size, device, channels_last)
    return speed, epochs_within(seconds, speed, n_train, n_val, n_final)


def choose_size(cfg: ModelConfig, build, input_shape: tuple[int, ...], batch_size: int,
                device: torch.device, channels_last: bool, seconds: float,
                n_train: int, n_val: int, n_final: int, min_epochs: float | None = None) -> SizeChoice | None:
    """The largest size of the family that gets ``min_epochs`` (default: the family's) within
    ``seconds`` on this machine (the cheapest when none does); None when the family has no sizes.
    ``build(model_cfg)`` makes a network; sizes are timed cheapest first and timing stops at the
    first one too slow."""
    family = family_of(cfg)
    min_epochs = family.min_epochs if min_epochs is None else min_epochs
    if not family.sizes:
        return None
    start = time.perf_counter()
    seen: list[dict] = []
    choice = SizeChoice(size=family.sizes[0][0])
    for name in size_names(family):
        sized = replace(cfg, size=name)
        options = sized_options(sized)
        if options in seen:  # the user's options pin what this size changes
            continue
        seen.append(options)
        left = seconds - (time.perf_counter() - start)
        try:
            speed, epochs = timed_epochs(sized, build, input_shape, batch_size, device, channels_last,
                                         left, n_train, n_val, n_final)
        except NeuroclassError:  # the user's options do not fit this size's preset (vit heads)
            continue
        choice.probes.append({"size": name, "examples_per_second": speed, "epochs": epochs})
        fits = epochs >= min_epochs
        if fits or len(choice.probes) == 1:  # the first size timed stays when none fits
            choice.size, choice.epochs = name, epochs
        if not fits:
            break
    choice.probe_seconds = time.perf_counter() - start
    return choice
