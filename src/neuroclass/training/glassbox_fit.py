"""Training the glass-box network (neuroclass.glassbox, NumPy) in the one pipeline: what the
Trainer does for a torch network, done by the network's own loop (``glassbox.fit``), filling the
same ``TrainState`` (history per epoch, stop reason, seconds) and calling the run's callbacks
(training.callbacks: the progress display, a stop request, a search's pruning) at the Trainer's
hooks: on_fit_start, on_epoch_start, on_batch_end after every update, on_epoch_end after each
epoch's history row, on_fit_end.

A stop request (callbacks.StopRequest: Ctrl-C, SIGTERM) ends training after the current update
with StopReason.INTERRUPTED, as it ends a torch run. The network's loop writes no checkpoint (its
optimiser state and the epoch's order of examples live in the process), so such a run cannot be
resumed mid-training: the pipeline finishes it with the weights it has, the best epoch's under
early stopping, and the stop's line says so.

Which config settings the network trains with, and what fills those left unset, is
training/glassbox_settings.py; train.epochs None trains 8 epochs, or under a time budget as many
as it allows (with early stopping: glassbox_settings.BUDGET_PATIENCE); train.threads None: 1 BLAS
thread (``BLAS_THREADS``).
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

from neuroclass.config import Config
from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import EpochRecord, FitStop, History, Network, fit
from neuroclass.runs.glassbox_module import GlassboxModule, input_rows
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.glassbox_settings import (CONFIG_KEYS, NO_EFFECT, SEARCH_GRID, SEARCH_SPACE,
                                                   glassbox_config, model_options, run_options)
from neuroclass.training.state import StopReason, TrainState
from neuroclass.training.trainer import BUDGET_EPOCHS, DEFAULT_EPOCHS, TrainingDiverged

__all__ = ["BLAS_THREADS", "CONFIG_KEYS", "FINISH_SHARE", "NO_EFFECT", "SEARCH_GRID", "SEARCH_SPACE",
           "build_glassbox", "fit_glassbox", "glassbox_config", "model_options", "run_options"]

# BLAS threads by default: a batch's products (128 x 784 x 200) are too short to share; on two
# cores with another process running, two threads made an epoch 10-100x slower than one
BLAS_THREADS = 1
# share of the time left kept for the finish (choosing the inference policy, the test predictions)
FINISH_SHARE = 0.05
# what an interrupted run's line adds: it was finished, not left to resume
NOT_RESUMABLE = "a glassbox run cannot resume mid-training, so it was finished with"


def build_glassbox(cfg: Config, input_shape: tuple[int, ...], classes: int) -> GlassboxModule:
    """The untrained network of a run: ``run_options(cfg)``, one input per value of an example
    (C * H * W pixels, or D table features), one output per class, seeded by train.seed."""
    network = Network(run_options(cfg), n_inputs=math.prod(input_shape), n_classes=classes, seed=cfg.train.seed)
    return GlassboxModule(network)


class _Driver:
    """The run's side of the network's loop: the TrainState it fills, the callbacks at the
    Trainer's hooks, early stopping after ``patience`` epochs without a lower validation loss
    (0: never; the best epoch's weights kept in ``best``) and a training loss no longer finite."""

    def __init__(self, module: GlassboxModule, state: TrainState, callbacks: list[Callback], patience: int,
                 clock: Callable[[], float]) -> None:
        self.module, self.state, self.callbacks, self.patience, self.clock = module, state, callbacks, patience, clock
        # the on_batch_end of the callbacks that have one: called after every update, often 50,000 an epoch
        self.batch_hooks = [c.on_batch_end for c in callbacks if type(c).on_batch_end is not Callback.on_batch_end]
        self.best: Optional[tuple[int, float, dict]] = None  # (epoch, validation loss, weights)
        self.diverged: Optional[int] = None  # the epoch whose training loss was not finite
        self.trained = 0.0  # seconds of training so far, the history's "time"
        self.mark = clock()  # the end of the last update's hooks: the next update's start

    def emit(self, hook: str) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self.state, self.module)

    def on_batch(self, loss: float, right: int, examples: int) -> bool:
        """After each update: the state's counters, on_batch_end; True once a callback asked to stop."""
        state = self.state
        state.batch_loss = loss
        state.epoch_loss_sum += loss * examples
        state.epoch_correct += right
        state.epoch_seen += examples
        state.running_accuracy = state.epoch_correct / state.epoch_seen
        state.record_step(self.clock() - self.mark, examples)  # the update, not the hooks
        for hook in self.batch_hooks:
            hook(state, self.module)
        self.mark = self.clock()
        return state.stop

    def on_epoch(self, record: EpochRecord) -> bool:
        """After each epoch: its history row, on_epoch_end, early stopping; True to stop."""
        state, self.trained = self.state, self.trained + record.seconds
        if not math.isfinite(record.train_loss):
            state.diverged, self.diverged = True, record.epoch
            state.request_stop(StopReason.DIVERGED, f"loss became {record.train_loss} in epoch {record.epoch}")
            return True
        improved = record.val_loss is not None and (self.best is None or record.val_loss < self.best[1])
        if self.patience and improved:
            self.best = (record.epoch, record.val_loss, self.module.network.state_dict())
        # the Trainer's columns: the balanced accuracy and macro F1 are what a search prunes on
        state.history.append({"epoch": record.epoch, "loss": record.train_loss, "accuracy": record.train_accuracy,
                              "val_loss": record.val_loss, "val_accuracy": record.val_accuracy,
                              "val_balanced_accuracy": record.val_balanced_accuracy,
                              "val_macro_f1": record.val_macro_f1, "lr": state.lr, "time": self.trained})
        state.epoch, state.epoch_loss_sum, state.epoch_correct, state.epoch_seen = record.epoch, 0.0, 0, 0
        self.emit("on_epoch_end")
        spent = bool(self.patience and self.best is not None and record.epoch - self.best[0] >= self.patience)
        if spent:
            state.request_stop(StopReason.EARLY_STOPPING, f"no validation loss improvement in {self.patience} "
                               f"epochs; the weights of epoch {self.best[0]} (validation loss "
                               f"{self.best[1]:.4f}) kept")
        if not state.stop and record.epoch < state.max_epochs:
            self.emit("on_epoch_start")
        return state.stop


def fit_glassbox(module: GlassboxModule, cfg: Config, splits, deadline: Optional[float],
                 clock: Callable[[], float] = time.perf_counter, reserve_seconds: float = 0.0,
                 callbacks: list[Callback] | tuple = (), stop: StopRequest | None = None) -> TrainState:
    """Train ``module``'s network on a run's splits (data.split's Splits: images or table rows as
    ``input_rows`` turns them into float32 rows), validating after each epoch, within ``deadline``
    (a ``clock()`` reading) less ``reserve_seconds`` and a share for the finish, calling
    ``callbacks`` at the Trainer's hooks; ``stop``: a request that ends training after the current
    update (StopReason.INTERRUPTED, the weights kept as they are then). Returns the fit's
    TrainState. Raises TrainingDiverged when the loss stops being finite, NeuroclassError for
    settings the network cannot use."""
    network, train = module.network, splits.train
    val = splits.val if splits.val is not None and len(splits.val) else None
    if cfg.train.patience and val is None:
        raise NeuroclassError("train.patience needs a validation split; set data.val_fraction > 0")
    epochs = cfg.train.epochs or (BUDGET_EPOCHS if deadline is not None else DEFAULT_EPOCHS)
    fit_deadline = None
    if deadline is not None:
        fit_deadline = deadline - reserve_seconds - FINISH_SHARE * max(0.0, deadline - clock())
    state = TrainState(max_epochs=epochs, steps_per_epoch=max(1, math.ceil(len(train) / network.options.batch_size)),
                       deadline=deadline, clock=clock, val_examples=0 if val is None else len(val),
                       reserve_seconds=reserve_seconds, lr=network.options.lr)
    driver = _Driver(module, state, [*([stop] if stop is not None else []), *callbacks], cfg.train.patience, clock)
    x_val, y_val = (None, None) if val is None else (input_rows(val.x), val.y.numpy())
    driver.emit("on_fit_start")
    driver.emit("on_epoch_start")
    history = fit(network, input_rows(train.x), train.y.numpy(), x_val, y_val, epochs=epochs, seed=cfg.train.seed,
                  deadline=fit_deadline, clock=clock, on_epoch=driver.on_epoch, on_batch=driver.on_batch,
                  threads=cfg.train.threads or BLAS_THREADS)
    _finish(driver, history)
    driver.emit("on_fit_end")
    if driver.diverged is not None:
        raise TrainingDiverged(f"the glassbox network's training loss became NaN or infinite in epoch "
                               f"{driver.diverged}; lower optim.lr (it was {network.options.lr:g})")
    return state


def _finish(driver: _Driver, history: History) -> None:
    """The stop reason and detail of a finished fit, and the weights kept: the best epoch's
    under early stopping, whatever ended training."""
    state = driver.state
    if driver.best is not None:
        best_epoch, _, weights = driver.best
        driver.module.network.load_state_dict(weights)
        state.best_epoch = best_epoch
    kept = (f"the weights of epoch {state.best_epoch} (the lowest validation loss)" if state.best_epoch
            else "its weights at that step")
    if state.stop_reason is StopReason.INTERRUPTED:
        state.stop_detail = f"{state.stop_detail}; {NOT_RESUMABLE} {kept}"
        return
    if state.stop_reason is None and history.stop is FitStop.DEADLINE:
        state.stop_reason = StopReason.TIME_BUDGET
        state.stop_detail = "time budget reached" + (f"; {kept} kept" if state.best_epoch else "")
    elif state.stop_reason is None:
        state.stop_reason, state.stop_detail = StopReason.COMPLETED, f"{state.epoch} epochs completed"
    state.stop_detail = f"glassbox: {state.stop_detail}"
