"""Training the glass-box network (neuroclass.glassbox, NumPy) in the one pipeline: what the
Trainer does for a torch network, done by the network's own loop (``glassbox.fit``), filling the
same ``TrainState`` (history per epoch, stop reason, seconds).

What the config has a key for comes from the config, the rest from ``model.options`` (the preset
and the network's shape: hidden, activation, output, loss, targets, dropout, batch_norm). A config
value left at the config's default gives way to the preset's:

    optim.lr            -> lr
    optim.name          -> optimizer: sgd (with optim.momentum > 0: "momentum"), adam, rmsprop
    optim.momentum      -> momentum (a momentum asked for turns plain sgd into "momentum")
    optim.weight_decay  -> l2 (added to the weights' gradients: L2, not AdamW's decoupled decay)
    optim.l1            -> l1
    model.init          -> init (he, xavier)
    train.batch_size    -> batch_size
    train.epochs        epochs (None: 8, or as many as the time budget allows)
    train.seed          the starting weights, the dropout masks and the order of the examples
    train.patience      early stopping on the validation loss, the best epoch's weights kept
    train.threads       BLAS threads while training (None: 1; see ``BLAS_THREADS``)

optim.name=adamw, the config's default, means the preset's optimiser. Settings the network has no
use for (a learning-rate schedule, Nesterov momentum, class weights, ...) fail when set; label
smoothing and the weight average (train.label_smoothing, train.ema) are left out.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Callable, Optional

from neuroclass.config import Config
from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import EpochRecord, FitStop, GlassboxOptions, History, Network, fit, glassbox_options
from neuroclass.runs.glassbox_module import GlassboxModule, input_rows
from neuroclass.training.state import StopReason, TrainState
from neuroclass.training.trainer import BUDGET_EPOCHS, DEFAULT_EPOCHS, TrainingDiverged

# model.options keys that the config sets instead
CONFIG_KEYS = {"lr": "optim.lr", "optimizer": "optim.name", "momentum": "optim.momentum", "l1": "optim.l1",
               "l2": "optim.weight_decay", "init": "model.init", "batch_size": "train.batch_size"}
# settings the glass-box network has no use for: set away from their defaults, they fail
UNUSED = ("optim.nesterov", "optim.schedule", "optim.warmup", "optim.step_every", "optim.gamma",
          "optim.layer_decay", "train.class_weight", "train.compile", "train.head_epochs", "train.freeze")
# The default search space of `neuroclass tune --model glassbox` (--space's YAML form), over settings
# the network uses: the learning rate (log-uniform, wide enough for plain SGD's 0.1 and Adam's 1e-3),
# the optimiser (sgd: with the config's momentum), the hidden layers' widths (comma-separated text
# as --set takes it: Optuna's choices are plain values), their activation, and the batch size.
SEARCH_SPACE = {
    "optim.lr": {"low": 1e-4, "high": 0.2, "log": True},
    "optim.name": ["sgd", "adam", "rmsprop"],
    "model.options.hidden": ["64", "128", "200", "256,128"],
    "model.options.activation": ["relu", "tanh", "sigmoid"],
    "train.batch_size": [16, 32, 64, 128, 256],
}
# --sampler grid: 2 x 3 x 2 = 12 trials (no learning rate at the config's default, 4e-3, which would
# give way to the preset's)
SEARCH_GRID = {"optim.name": ["sgd", "adam"], "optim.lr": [1e-3, 1e-2, 1e-1], "model.options.hidden": ["100", "200"]}
# BLAS threads by default: a batch's products (128 x 784 x 200) are too short to share; on two
# cores with another process running, two threads made an epoch 10-100x slower than one
BLAS_THREADS = 1
# share of the time left kept for the finish (choosing the inference policy, the test predictions)
FINISH_SHARE = 0.05


def model_options(options: dict) -> GlassboxOptions:
    """The family's options from ``model.options``. Raises NeuroclassError for a key the config
    sets instead (naming it), and as ``glassbox_options`` does."""
    for key in options:
        if key in CONFIG_KEYS:
            raise NeuroclassError(f"model.options.{key}: the glassbox family takes it from {CONFIG_KEYS[key]}; "
                                  f"use --set {CONFIG_KEYS[key]}=... instead")
    return glassbox_options(options)


def _get(cfg: Config, dotted: str):
    section, key = dotted.split(".")
    return getattr(getattr(cfg, section), key)


def run_options(cfg: Config) -> GlassboxOptions:
    """The network's options for a run: ``model.options`` over the preset, then each config value
    that differs from the config's default (the table in the module's docstring). Raises
    NeuroclassError for a setting the network cannot use."""
    default = Config()
    changed = [key for key in UNUSED if _get(cfg, key) != _get(default, key)]
    if changed:
        raise NeuroclassError(f"{changed[0]}={_get(cfg, changed[0])} has no effect on the glassbox family (it "
                              "trains at a constant learning rate, without class weights or transfer); drop it")
    values = asdict(model_options(cfg.model.options))
    for key, dotted in CONFIG_KEYS.items():
        if key != "optimizer" and _get(cfg, dotted) not in (_get(default, dotted), None):
            values[key] = _get(cfg, dotted)
    optim = cfg.optim
    if optim.name != default.optim.name:
        values["optimizer"] = {"sgd": "momentum" if optim.momentum else "sgd"}.get(optim.name, optim.name)
    elif values["optimizer"] == "sgd" and optim.momentum not in (default.optim.momentum, 0):
        values["optimizer"] = "momentum"
    return glassbox_options(values)


def build_glassbox(cfg: Config, input_shape: tuple[int, ...], classes: int) -> GlassboxModule:
    """The untrained network of a run: ``run_options(cfg)``, one input per value of an example
    (C * H * W pixels, or D table features), one output per class, seeded by train.seed."""
    network = Network(run_options(cfg), n_inputs=math.prod(input_shape), n_classes=classes, seed=cfg.train.seed)
    return GlassboxModule(network)


def _early_stop(patience: int, network: Network) -> tuple[Callable[[EpochRecord], bool], dict]:
    """An ``on_epoch`` that stops after ``patience`` epochs without a lower validation loss (0: never)
    or at a loss that is no longer finite, and what it found: "best" (epoch, loss, weights),
    "diverged" (the epoch)."""
    found: dict = {"best": None, "diverged": None}

    def on_epoch(record: EpochRecord) -> bool:
        if not math.isfinite(record.train_loss):
            found["diverged"] = record.epoch
            return True
        if not patience or record.val_loss is None:
            return False
        best = found["best"]
        if best is None or record.val_loss < best[1]:
            found["best"] = (record.epoch, record.val_loss, network.state_dict())
            return False
        return record.epoch - best[0] >= patience

    return on_epoch, found


def _history_rows(history: History, lr: float) -> list[dict]:
    """metrics.csv rows, one per epoch, in the Trainer's keys; "time": seconds of training so far."""
    rows, elapsed = [], 0.0
    for r in history.epochs:
        elapsed += r.seconds
        rows.append({"epoch": r.epoch, "loss": r.train_loss, "accuracy": r.train_accuracy, "val_loss": r.val_loss,
                     "val_accuracy": r.val_accuracy, "lr": lr, "time": elapsed})
    return rows


def fit_glassbox(module: GlassboxModule, cfg: Config, splits, deadline: Optional[float],
                 clock: Callable[[], float] = time.perf_counter, reserve_seconds: float = 0.0) -> TrainState:
    """Train ``module``'s network on a run's splits (data.split's Splits: images or table rows as
    ``input_rows`` turns them into float32 rows), validating after each epoch, within ``deadline``
    (a ``clock()`` reading) less ``reserve_seconds`` and a share for the finish. Returns the fit's
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
    on_epoch, found = _early_stop(cfg.train.patience, network)
    x_val, y_val = (None, None) if val is None else (input_rows(val.x), val.y.numpy())
    history = fit(network, input_rows(train.x), train.y.numpy(), x_val, y_val, epochs=epochs, seed=cfg.train.seed,
                  deadline=fit_deadline, clock=clock, on_epoch=on_epoch, threads=cfg.train.threads or BLAS_THREADS)
    if found["diverged"] is not None:
        raise TrainingDiverged(f"the glassbox network's training loss became NaN or infinite in epoch "
                               f"{found['diverged']}; lower optim.lr (it was {network.options.lr:g})")
    return _state(history, found, network, cfg, epochs, len(train), deadline, clock)


def _state(history: History, found: dict, network: Network, cfg: Config, epochs: int, rows: int,
           deadline: Optional[float], clock: Callable[[], float]) -> TrainState:
    """The TrainState of a finished fit; the best epoch's weights restored after early stopping."""
    batch = network.options.batch_size
    state = TrainState(max_epochs=epochs, steps_per_epoch=max(1, math.ceil(rows / batch)), deadline=deadline,
                       clock=clock)
    state.history = _history_rows(history, network.options.lr)
    state.epoch = len(history.epochs)
    state.samples_seen = sum(r.examples for r in history.epochs)
    state.step = sum(math.ceil(r.examples / batch) for r in history.epochs)
    state.train_seconds = sum(r.seconds for r in history.epochs)
    if history.stop is FitStop.CALLBACK and found["best"] is not None:
        best_epoch, best_loss, weights = found["best"]
        network.load_state_dict(weights)
        state.best_epoch = best_epoch
        state.stop_reason = StopReason.EARLY_STOPPING
        state.stop_detail = (f"no validation loss improvement in {cfg.train.patience} epochs; the weights of "
                             f"epoch {best_epoch} (validation loss {best_loss:.4f}) kept")
    elif history.stop is FitStop.DEADLINE:
        state.stop_reason, state.stop_detail = StopReason.TIME_BUDGET, "time budget reached"
    else:
        state.stop_reason = StopReason.COMPLETED
        state.stop_detail = f"{state.epoch} epochs completed"
    state.stop_detail = f"glassbox: {state.stop_detail}"
    return state
