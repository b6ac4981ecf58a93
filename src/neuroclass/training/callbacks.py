"""Training callbacks: progress display, early stopping, time budget, NaN guard.

Hooks: on_fit_start, on_epoch_start, on_batch_end, on_epoch_end, on_fit_end. A callback ends a fit
by ``state.request_stop(reason)``; decisions are pure functions so they can be tested alone.
on_epoch_end and on_fit_end get the weights training would hand back (under ``train.ema`` the
average, training/ema.py); the other hooks get the live model that the optimizer steps.
"""
from __future__ import annotations

import copy
import math
import sys
import time
from typing import Optional, TextIO

from torch import nn

from neuroclass.training.state import TrainState


class Callback:
    def on_fit_start(self, state: TrainState, model: nn.Module) -> None: ...
    def on_epoch_start(self, state: TrainState, model: nn.Module) -> None: ...
    def on_batch_end(self, state: TrainState, model: nn.Module) -> None: ...
    def on_epoch_end(self, state: TrainState, model: nn.Module) -> None: ...
    def on_fit_end(self, state: TrainState, model: nn.Module) -> None: ...


def should_stop_early(losses: list[float], patience: int, min_delta: float = 0.0) -> bool:
    """True when the last ``patience`` losses brought no improvement over the best before them."""
    if patience <= 0 or len(losses) <= patience:
        return False
    best_before = min(losses[:-patience])
    return min(losses[-patience:]) > best_before - min_delta


class EarlyStopping(Callback):
    """Stop when validation loss stops improving; restore the best weights at the end."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_fit_start(self, state: TrainState, model: nn.Module) -> None:
        self.losses: list[float] = []
        self.best_loss, self.best_weights, self.best_epoch = math.inf, None, None

    def on_epoch_end(self, state: TrainState, model: nn.Module) -> None:
        loss = state.history[-1].get("val_loss")
        if loss is None or not math.isfinite(loss):
            return
        self.losses.append(loss)
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, state.epoch
            self.best_weights = copy.deepcopy(model.state_dict())
        if should_stop_early(self.losses, self.patience):
            state.request_stop(f"early stopping: no validation loss improvement in {self.patience} "
                               f"epochs (best at epoch {self.best_epoch})")

    def on_fit_end(self, state: TrainState, model: nn.Module) -> None:
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights)
            state.best_epoch = self.best_epoch


class TimeBudget(Callback):
    """Stop when one more step, the validation pass and the final evaluation would not all end by
    the deadline."""

    def on_batch_end(self, state: TrainState, model: nn.Module) -> None:
        if state.deadline is None:
            return
        if time.perf_counter() + state.next_step_seconds() + state.finish_seconds() >= state.deadline:
            state.request_stop("time budget reached")


class NaNGuard(Callback):
    """A non-finite loss ends training at once; the Trainer then reports divergence."""

    def on_batch_end(self, state: TrainState, model: nn.Module) -> None:
        if not math.isfinite(state.batch_loss):
            state.diverged = True
            state.request_stop(f"loss became {state.batch_loss} at epoch {state.epoch + 1}, "
                               f"step {state.step}")


def _fmt_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress(Callback):
    """A one-line progress bar on a terminal; one summary line per epoch otherwise."""

    def __init__(self, stream: Optional[TextIO] = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def on_batch_end(self, state: TrainState, model: nn.Module) -> None:
        if self.quiet or not self.tty or state.step % 10:
            return
        done = state.step - state.epoch * state.steps_per_epoch
        frac = done / state.steps_per_epoch
        p = state.progress()
        eta = state.elapsed * (1 - p) / p if p > 0 else 0.0
        bar = "#" * int(20 * frac)
        self.stream.write(f"\repoch {state.epoch + 1} [{bar:<20}] loss {state.batch_loss:.4f} "
                          f"acc {state.running_accuracy:.4f} lr {state.lr:.2e} ETA {_fmt_seconds(eta)} ")
        self.stream.flush()

    def on_epoch_end(self, state: TrainState, model: nn.Module) -> None:
        if self.quiet:
            return
        row = state.history[-1]
        text = f"epoch {row['epoch']}: loss {row['loss']:.4f} acc {row['accuracy']:.4f}"
        if row.get("val_loss") is not None:
            text += f" | val_loss {row['val_loss']:.4f} val_acc {row['val_accuracy']:.4f}"
        text += f" | {row['time']:.1f}s"
        self.stream.write(("\r" if self.tty else "") + text + " " * 10 + "\n")
        self.stream.flush()
