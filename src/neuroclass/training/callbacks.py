"""Training callbacks: early stopping, time budget, NaN guard, a stop request, and a progress display.

Hooks: on_fit_start, on_epoch_start, on_batch_end, on_epoch_end, on_fit_end. A callback ends a fit
by ``state.request_stop(StopReason.X, "the reason in words")``; decisions are pure functions or
TrainState's estimates, so they can be tested alone. A callback that keeps state across epochs
(EarlyStopping) returns it from ``state_dict`` (tensors and JSON values), which a checkpoint saves
and ``load_state_dict`` puts back after on_fit_start when a fit resumes (training/checkpoint.py).
The checkpoint writer itself is training/checkpoint_writer.py's CheckpointWriter.
on_epoch_end and on_fit_end get the weights training would hand back (under ``train.ema`` the
average, training/ema.py); the other hooks get the live model that the optimizer steps.
"""
from __future__ import annotations

import contextlib
import copy
import math
from typing import Optional, TextIO

from torch import nn
from tqdm import tqdm

from neuroclass.training.state import StopReason, TrainState


class Callback:
    def on_fit_start(self, state: TrainState, model: nn.Module) -> None: ...
    def on_epoch_start(self, state: TrainState, model: nn.Module) -> None: ...
    def on_batch_end(self, state: TrainState, model: nn.Module) -> None: ...
    def on_epoch_end(self, state: TrainState, model: nn.Module) -> None: ...
    def on_fit_end(self, state: TrainState, model: nn.Module) -> None: ...

    def state_dict(self) -> dict:
        """What a resumed fit needs of this callback: str keys; tensors, JSON values, dicts, lists."""
        return {}

    def load_state_dict(self, saved: dict) -> None:
        """Put back what ``state_dict`` returned (after on_fit_start, when a fit resumes)."""


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
            state.request_stop(StopReason.EARLY_STOPPING, f"no validation loss improvement in "
                               f"{self.patience} epoch{'s' * (self.patience != 1)} "
                               f"(best at epoch {self.best_epoch})")

    def on_fit_end(self, state: TrainState, model: nn.Module) -> None:
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights)
            state.best_epoch = self.best_epoch

    def state_dict(self) -> dict:
        return {"losses": list(self.losses), "best_loss": self.best_loss, "best_epoch": self.best_epoch,
                "best_weights": self.best_weights}

    def load_state_dict(self, saved: dict) -> None:
        self.losses, self.best_loss = list(saved["losses"]), saved["best_loss"]
        self.best_epoch, self.best_weights = saved["best_epoch"], saved["best_weights"]


class TimeBudget(Callback):
    """Stop when one more step would not end by ``state.end``, the end of training that the
    learning-rate schedule anneals to: the deadline less the last validation pass and the final
    evaluation (training/state.py)."""

    def on_batch_end(self, state: TrainState, model: nn.Module) -> None:
        if state.steps_left() < 1:
            state.request_stop(StopReason.TIME_BUDGET, f"time budget reached after {state.step} steps, "
                               f"{state.finish_seconds():.1f} s kept for the evaluation after training")

    def on_epoch_end(self, state: TrainState, model: nn.Module) -> None:
        if state.epoch < state.max_epochs:  # the validation pass took time too
            self.on_batch_end(state, model)


class NaNGuard(Callback):
    """A non-finite loss ends training at once; the Trainer then reports divergence."""

    def on_batch_end(self, state: TrainState, model: nn.Module) -> None:
        if not math.isfinite(state.batch_loss):
            state.diverged = True
            state.request_stop(StopReason.DIVERGED, f"loss became {state.batch_loss} at epoch "
                               f"{state.epoch + 1}, step {state.step}")


class StopRequest(Callback):
    """A request from outside the fit to end it after the current step, e.g. from a signal handler
    that the caller installs (the library installs none). ``request`` only sets a flag, so it is
    safe in a signal handler; the next step's end stops the fit with StopReason.INTERRUPTED, which
    a CheckpointWriter later in the callback list saves for a resume.

    Example::

        stop = StopRequest()
        signal.signal(signal.SIGINT, lambda signum, frame: stop.request("interrupted (Ctrl-C)"))
        Trainer(..., callbacks=[stop, writer])
    """

    def __init__(self) -> None:
        self.detail: Optional[str] = None

    @property
    def requested(self) -> bool:
        return self.detail is not None

    def request(self, detail: str = "stop requested") -> None:
        """Ask the fit to stop after the current step; ``detail`` says why, for people."""
        if self.detail is None:
            self.detail = detail

    def on_batch_end(self, state: TrainState, model: nn.Module) -> None:
        if self.detail is not None:
            epoch, step = state.position
            state.request_stop(StopReason.INTERRUPTED, f"{self.detail} at epoch {epoch}, step {step}")


class Progress(Callback):
    """A progress bar on a terminal (tqdm: steps done of those planned, rate, time left, loss,
    accuracy and learning rate) and one summary line per epoch, written to ``stream``. An epoch's
    line is written at the next hook (the next epoch's start, or the fit's end), after every
    on_epoch_end: after a CheckpointWriter's save, so that a printed epoch is a saved one.

    Example::

        trainer = Trainer(..., callbacks=[Progress(sys.stderr)])
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.bar: Optional[tqdm] = None
        self.pending: Optional[str] = None  # the last epoch's line, not written yet

    def on_fit_start(self, state: TrainState, model: nn.Module) -> None:
        self.pending = None
        # a bar only on a terminal: elsewhere (a log file, a pipe) its redraws would be noise
        self.bar = tqdm(total=state.planned_steps(), initial=state.step, file=self.stream,
                        disable=not self.tty, unit="step", leave=False, dynamic_ncols=True)

    def on_epoch_start(self, state: TrainState, model: nn.Module) -> None:
        self._write_pending()
        self.bar.set_description(f"epoch {state.epoch + 1}", refresh=False)

    def on_batch_end(self, state: TrainState, model: nn.Module) -> None:
        if self.bar.disable:
            return
        self.bar.total = state.planned_steps()  # a time budget's plan changes as it is measured
        self.bar.set_postfix(loss=f"{state.batch_loss:.4f}", acc=f"{state.running_accuracy:.4f}",
                             lr=f"{state.lr:.2e}", refresh=False)  # drawn at the bar's next refresh
        self.bar.update(1)

    def on_epoch_end(self, state: TrainState, model: nn.Module) -> None:
        row = state.history[-1]
        text = f"epoch {row['epoch']}: loss {row['loss']:.4f} acc {row['accuracy']:.4f}"
        if row.get("val_loss") is not None:
            text += f" | val_loss {row['val_loss']:.4f} val_acc {row['val_accuracy']:.4f}"
        self.pending = text + f" | {row['time']:.1f}s"

    def on_fit_end(self, state: TrainState, model: nn.Module) -> None:
        self._write_pending()
        self.bar.close()

    def _write_pending(self) -> None:
        if self.pending is not None:
            # OSError: a closed terminal fails writes (EIO) until the CLI's SIGHUP handler points
            # the stream elsewhere; a lost progress line must not end the training
            with contextlib.suppress(OSError):
                tqdm.write(self.pending, file=self.stream)  # above the bar, if any
            self.pending = None
