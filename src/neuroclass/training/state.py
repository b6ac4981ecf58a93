"""The mutable state of one fit, shared by the Trainer and its callbacks."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional


# share of the budget kept back for what the estimate leaves out (fitting the temperature, metrics):
# 10-minute runs ended 0.1-0.4 s late without it
FINISH_MARGIN = 0.005


@dataclass
class TrainState:
    max_epochs: int
    steps_per_epoch: int
    deadline: Optional[float] = None  # time.perf_counter() value by which training must stop
    start: float = field(default_factory=time.perf_counter)
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed
    lr: float = 0.0
    batch_loss: float = 0.0
    running_accuracy: float = 0.0  # training accuracy so far in this epoch
    history: list = field(default_factory=list)  # one dict per epoch: loss, accuracy, val_*, lr, time
    stop: bool = False  # set by a callback: finish the current step, then end training
    stop_reason: str = ""
    diverged: bool = False
    best_epoch: Optional[int] = None  # epoch whose weights were restored
    eval_seconds: float = 0.0  # duration of the last validation pass, for budget planning
    eval_seconds_per_example: float = 0.0  # measured by validation passes
    reserve_examples: int = 0  # examples the caller evaluates after fit (the test split)
    samples_seen: int = 0
    train_seconds: float = 0.0  # time spent in training steps only
    # the first step carries one-off costs (kernel selection, allocations): up to 50x a later step
    # on a CPU, so per-example estimates leave it out
    first_step_seconds: float = 0.0
    first_step_samples: int = 0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def finish_seconds(self) -> float:
        """Time still needed after the current step: the next validation pass and the caller's
        final evaluation (per-example cost from validation, else a third of a training step's,
        steps after the first; before there is such a step, nothing is reserved yet), plus a
        FINISH_MARGIN share of the budget."""
        per_example = self.eval_seconds_per_example
        steady_samples = self.samples_seen - self.first_step_samples
        if not per_example and self.step > 1 and steady_samples > 0:
            steady_seconds = self.train_seconds - self.first_step_seconds
            per_example = steady_seconds / steady_samples / 3  # forward only: ~1/3 of a step
        margin = FINISH_MARGIN * (self.deadline - self.start) if self.deadline is not None else 0.0
        return self.eval_seconds + self.reserve_examples * per_example + margin

    def next_step_seconds(self) -> float:
        """The expected duration of one more training step: the mean of the steps after the first."""
        steady_steps = self.step - 1
        return (self.train_seconds - self.first_step_seconds) / steady_steps if steady_steps > 0 else 0.0

    def progress(self) -> float:
        """Fraction of training done: by steps, or by the clock when that is further along."""
        p = self.step / max(1, self.max_epochs * self.steps_per_epoch)
        if self.deadline is not None:
            span = max(1e-9, self.deadline - self.finish_seconds() - self.start)
            p = max(p, (time.perf_counter() - self.start) / span)
        return min(p, 1.0)

    def request_stop(self, reason: str) -> None:
        if not self.stop:
            self.stop, self.stop_reason = True, reason
