"""The mutable state of one fit, shared by the Trainer and its callbacks, and the end of training.

Under a time budget the end of training is a clock time, ``TrainState.end``: the deadline less the
time the finish needs (the last validation pass and the caller's evaluation of what it keeps
back). One definition serves both the learning-rate schedule, which anneals to that end
(``progress``), and the stop (``steps_left``, read by callbacks.TimeBudget). The timings behind it
are robust estimates: the median of recent steps (one step slowed by another process does not move
the plan), the first step left out (one-off costs), the first batch of each validation pass left
out, and the fastest pass kept. When the end must move earlier than the steps left allow, the
schedule gets ANNEAL_STEPS more steps to anneal the rate instead of a stop at the peak rate.
"""
from __future__ import annotations

import collections
import enum
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

Clock = Callable[[], float]  # seconds, of any origin: time.perf_counter, or a test's fake clock

# share of the budget kept back for what the estimate leaves out (fitting the temperature, metrics):
# 10-minute runs ended 0.1-0.4 s late without it
FINISH_MARGIN = 0.005
# steps after the first whose median is the step time: enough to outvote a step slowed by another
# process (on 2 shared CPU cores single steps took 20x the median), few enough to follow a change
STEP_WINDOW = 25
# when a new estimate moves the end of training earlier than the steps left allow (to a time already
# past, say), these many more steps anneal the learning rate, the last at the schedule's end, so that
# a stop by the budget never comes at the peak rate. The evaluation after training then ends up to
# these steps late; training steps never run past the deadline itself.
ANNEAL_STEPS = 3
# the forward pass of an example costs about a third of a training step (forward, backward for the
# activations and for the weights): the evaluation cost per example before a validation pass
FORWARD_SHARE = 1 / 3


class StopReason(enum.Enum):
    """Why a fit ended; ``value`` is what a run's timing.json records as "stop_reason"."""

    COMPLETED = "completed"  # every planned epoch ran
    TIME_BUDGET = "time_budget"  # one more step would leave too little time for the finish
    EARLY_STOPPING = "early_stopping"  # the validation loss stopped improving
    DIVERGED = "diverged"  # the loss became NaN or infinite
    TARGET_REACHED = "target_reached"  # a target accuracy was reached (bench, benchmarks)
    TARGET_NOT_REACHED = "target_not_reached"  # a target's time limit came first
    INTERRUPTED = "interrupted"  # a stop request (Ctrl-C, SIGTERM): checkpointed mid-epoch, to be resumed


def read_stop_reason(value: object) -> Optional[StopReason]:
    """The StopReason of a recorded "stop_reason" value; None where none is recorded or the value
    is not one of StopReason's (run folders written before stop reasons were an enum held text).

    >>> read_stop_reason("time_budget"), read_stop_reason(""), read_stop_reason("time budget reached")
    (<StopReason.TIME_BUDGET: 'time_budget'>, None, None)
    """
    try:
        return StopReason(value)
    except ValueError:
        return None


def _fits(seconds: float, each: float) -> int:
    """How many of ``each`` fit in ``seconds`` (one that fits to rounding fits); 0 for none."""
    return max(0, math.floor(seconds / each * (1 + 1e-9)))


def steps_that_fit(seconds: float, step_seconds: float, val_seconds: float, steps_per_epoch: int,
                   done_in_epoch: int) -> int:
    """Training steps of ``step_seconds`` that fit in ``seconds`` when a validation pass of
    ``val_seconds`` follows each epoch's last step and ``done_in_epoch`` of the current epoch's
    ``steps_per_epoch`` steps are done (all of them: its pass comes first). The pass after the
    last step that fits is not counted: the finish holds it.

    >>> steps_that_fit(1.0, 0.1, 0.0, 5, 0), steps_that_fit(1.0, 0.1, 0.5, 5, 0), steps_that_fit(1.0, 0.1, 0.5, 5, 5)
    (10, 5, 5)
    """
    if done_in_epoch >= steps_per_epoch:
        seconds, done_in_epoch = seconds - val_seconds, 0
    rest_of_epoch = steps_per_epoch - done_in_epoch
    if seconds < rest_of_epoch * step_seconds:
        return _fits(seconds, step_seconds)
    seconds -= rest_of_epoch * step_seconds
    epoch_seconds = val_seconds + steps_per_epoch * step_seconds  # a pass, then a whole epoch
    whole = _fits(seconds, epoch_seconds)
    seconds -= whole * epoch_seconds
    return rest_of_epoch + whole * steps_per_epoch + _fits(seconds - val_seconds, step_seconds)


@dataclass
class FitObjects:
    """What a fit steps besides its counters: the live model, its optimizer, the weight average
    (training/ema.py; None without train.ema), the generator of shuffling and augmentation, and the
    callbacks (whose ``state_dict`` a checkpoint holds). Set by the Trainer at fit start."""

    model: Any  # nn.Module
    optimizer: Any  # torch.optim.Optimizer
    average: Any  # WeightAverage | None
    generator: Any  # torch.Generator
    callbacks: list


@dataclass
class TrainState:
    """One fit's counters, measurements and stop flag. Times are in seconds of ``clock``.

    >>> state = TrainState(max_epochs=2, steps_per_epoch=10)
    >>> state.progress()  # at the end of the coming first step: 1 of 20
    0.05
    """

    max_epochs: int
    steps_per_epoch: int
    deadline: Optional[float] = None  # clock() value by which the whole run must end
    clock: Clock = time.perf_counter
    start: Optional[float] = None  # clock() at the fit's start (default: now)
    val_examples: int = 0  # examples of one validation pass: one more runs after the last step
    reserve_examples: int = 0  # examples the caller evaluates after fit, in single-pass units
    reserve_seconds: float = 0.0  # the caller's other work after fit (the run's report), seconds
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed
    lr: float = 0.0
    batch_loss: float = 0.0
    running_accuracy: float = 0.0  # training accuracy so far in this epoch
    history: list = field(default_factory=list)  # one dict per epoch: loss, accuracy, val_*, lr, time
    stop: bool = False  # set by a callback: finish the current step, then end training
    stop_reason: Optional[StopReason] = None  # COMPLETED once a fit ends without a requested stop
    stop_detail: str = ""  # the stop in words, for people ("no validation loss improvement in 3 epochs")
    diverged: bool = False
    best_epoch: Optional[int] = None  # epoch whose weights were restored
    samples_seen: int = 0
    train_seconds: float = 0.0  # time spent in training steps only
    # the first step carries one-off costs (kernel selection, allocations): up to 50x a later step
    # on a CPU, so the step estimates leave it out
    first_step_seconds: float = 0.0
    first_step_samples: int = 0
    # cost per example of each whole validation pass, in order: the final evaluation runs whole
    # passes too (one per test-time view), first batch included
    eval_pass_costs: list = field(default_factory=list)
    first_pass_steady_cost: float = 0.0  # the first pass's cost per example after its first batch
    # checkpoint writes (training/checkpoint_writer.py): the longest write, which follows
    # each epoch's validation pass, and the share of training time that periodic writes add
    checkpoint_seconds: float = 0.0
    checkpoint_share: float = 0.0
    # every write of the run (of its earlier sessions too, up to the checkpoint a fit resumes): how
    # many, the one being written counted, and their seconds (each write's own once it is done)
    checkpoints_written: int = 0
    checkpoint_write_seconds: float = 0.0
    # the largest share of training time that epoch-end writes take (train.checkpoint_share, set by
    # the writer; 1: a write after every epoch): the budget reserves the writes this spacing makes
    epoch_checkpoint_share: float = 1.0
    end: Optional[float] = None  # clock() value by which training steps end (time budget only)
    recent_steps: collections.deque = field(default_factory=lambda: collections.deque(maxlen=STEP_WINDOW))
    # the epoch in progress: its shuffled order of training examples (a tensor) and the running sums
    # of its history row, so that a checkpoint taken mid-epoch continues the same epoch
    epoch_order: Any = None
    epoch_loss_sum: float = 0.0  # sum over the epoch's examples of the batch loss
    epoch_correct: int = 0
    epoch_seen: int = 0
    objects: Optional[FitObjects] = None  # what a checkpoint saves besides this state

    def __post_init__(self) -> None:
        if self.start is None:
            self.start = self.clock()
        if self.deadline is not None and self.end is None:
            self.end = self.deadline - self.finish_seconds()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start

    @property
    def position(self) -> tuple[int, int]:
        """Where the fit is, as people are told (an interrupt's line, a checkpoint's name, a resume's
        record): (the epoch in progress, 1-based, so ``epoch`` + 1; the optimizer steps done)."""
        return self.epoch + 1, self.step

    @property
    def step_in_epoch(self) -> int:
        """Optimizer steps done in the epoch in progress (0 at an epoch's start; ``steps_per_epoch``
        when its steps are done and its validation pass is not)."""
        return self.step - self.epoch * self.steps_per_epoch

    def record_step(self, seconds: float, samples: int) -> None:
        """Count one optimizer step of ``seconds`` over ``samples`` examples, and re-plan the end."""
        self.step += 1
        self.samples_seen += samples
        self.train_seconds += seconds
        if self.step == 1:
            self.first_step_seconds, self.first_step_samples = seconds, samples
        else:
            self.recent_steps.append(seconds)
        self._replan()

    def record_validation(self, seconds: float, examples: int, head_seconds: float = 0.0,
                          head_examples: int = 0) -> None:
        """A whole validation pass spent ``seconds`` on ``examples``, of which ``head_seconds`` on
        its first batch of ``head_examples``; re-plan the end."""
        if examples > 0:
            self.eval_pass_costs.append(seconds / examples)
            if len(self.eval_pass_costs) == 1:
                rest = examples - head_examples
                self.first_pass_steady_cost = (seconds - head_seconds) / rest if rest > 0 else seconds / examples
        self._replan()

    @property
    def eval_seconds_per_example(self) -> float:
        """Measured cost of evaluating one example (0.0 before a validation pass): the median of
        the whole passes after the first; until there is one, the first pass without its first
        batch, where its one-off costs (allocations, kernel choice) land. Not the cheapest pass:
        the budget reserves time for many passes after training (test-time views of the
        validation and test splits), and an optimistic cost overran 3-minute budgets by 7 s."""
        if len(self.eval_pass_costs) > 1:
            return statistics.median(self.eval_pass_costs[1:])
        return self.first_pass_steady_cost

    def next_step_seconds(self) -> float:
        """The expected duration of one more training step: the median of the recent steps after
        the first (0.0 before there is one)."""
        return statistics.median(self.recent_steps) if self.recent_steps else 0.0

    def eval_seconds_per_example_estimate(self) -> float:
        """Seconds to evaluate one example: measured by validation passes, else FORWARD_SHARE of a
        training step's per-example time (0.0 before a step after the first)."""
        if self.eval_seconds_per_example:
            return self.eval_seconds_per_example
        steady_samples = (self.samples_seen - self.first_step_samples) / max(1, self.step - 1)
        return self.next_step_seconds() / steady_samples * FORWARD_SHARE if steady_samples else 0.0

    def epoch_write_seconds(self) -> float:
        """The expected checkpoint-write seconds after an epoch: the longest write where every epoch
        writes one; where writes are spaced to take at most the share ``epoch_checkpoint_share`` of
        training time, that share's worth of an epoch when less (0.0 before a write).

        >>> state = TrainState(max_epochs=9, steps_per_epoch=10, checkpoint_seconds=1.0, epoch_checkpoint_share=0.2)
        >>> state.recent_steps.extend([0.25, 0.25])  # 2.5 s epochs: a 1 s write every 4 s at most
        >>> state.epoch_write_seconds()
        0.625
        """
        share = self.epoch_checkpoint_share
        if share >= 1:
            return self.checkpoint_seconds
        epoch = (self.steps_per_epoch * self.next_step_seconds()
                 + self.val_examples * self.eval_seconds_per_example_estimate())
        return min(self.checkpoint_seconds, epoch * share / (1 - share))

    def finish_seconds(self) -> float:
        """Time needed after the last step: the last validation pass, its expected checkpoint write
        (``epoch_write_seconds``), the caller's evaluation of ``reserve_examples`` and its
        ``reserve_seconds`` of other work, plus a FINISH_MARGIN share of the budget."""
        margin = FINISH_MARGIN * (self.deadline - self.start) if self.deadline is not None else 0.0
        evaluation = (self.val_examples + self.reserve_examples) * self.eval_seconds_per_example_estimate()
        return evaluation + self.epoch_write_seconds() + self.reserve_seconds + margin

    def _replan(self) -> None:
        """Move ``end`` to the deadline less the finish: later at once (more time is safe), earlier
        no further than ANNEAL_STEPS steps from now, so that the schedule can anneal to it."""
        if self.deadline is None:
            return
        target = self.deadline - self.finish_seconds()
        anneal_until = self.clock() + ANNEAL_STEPS * self.next_step_seconds()
        self.end = target if self.end is None else max(target, min(self.end, anneal_until))

    def steps_left(self) -> float:
        """Steps that still fit before ``end`` at the expected step time (with its share of periodic
        checkpoint writes), with a validation pass and the expected checkpoint write after each
        epoch's last step: 0 once none does; inf without a deadline, or before a step
        after the first has been timed and while time remains. Read between steps."""
        if self.deadline is None:
            return math.inf
        if self.end is None:  # a deadline set after construction
            self._replan()
        now, step_seconds = self.clock(), self.next_step_seconds()
        if now >= self.end:
            return 0
        if step_seconds <= 0:
            return math.inf
        val_seconds = self.val_examples * self.eval_seconds_per_example_estimate() + self.epoch_write_seconds()
        return steps_that_fit(self.end - now, step_seconds * (1 + self.checkpoint_share), val_seconds,
                              self.steps_per_epoch,
                              self.step - self.epoch * self.steps_per_epoch)

    def planned_steps(self) -> int:
        """The step count at which training ends: every planned epoch's steps, or fewer where the
        time budget ends it first."""
        by_epochs = self.max_epochs * self.steps_per_epoch
        return int(min(by_epochs, self.step + self.steps_left()))

    def progress(self) -> float:
        """Fraction of training done once the coming step ends, in (0, 1]: 1 for the last planned
        step, so that the learning-rate schedule reaches its end where training does."""
        planned = self.planned_steps()
        return 1.0 if planned <= self.step else (self.step + 1) / planned

    def request_stop(self, reason: StopReason, detail: str) -> None:
        """End training after the current step; the first request's reason is the one kept."""
        if not isinstance(reason, StopReason):
            raise TypeError(f"reason must be a StopReason. Got {reason!r} instead.")
        if not self.stop:
            self.stop, self.stop_reason, self.stop_detail = True, reason, detail
