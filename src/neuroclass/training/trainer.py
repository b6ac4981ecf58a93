"""The Trainer: batches sliced from in-memory tensors, augmentation on the device, callbacks."""
from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch
from sklearn.metrics import f1_score, recall_score
from torch import nn

from neuroclass.config import AugmentConfig, OptimConfig, TrainConfig
from neuroclass.data.augment import augment_batch, mix_batch
from neuroclass.data.dataset import Dataset
from neuroclass.device import keep_freed_memory, memory_format
from neuroclass.errors import NeuroclassError
from neuroclass.inference.logits import predict_outputs
from neuroclass.models.layers import Classifier, cross_entropy
from neuroclass.training.callbacks import Callback, EarlyStopping, NaNGuard, TimeBudget
from neuroclass.training.checkpoint import Checkpoint
from neuroclass.training.ema import WeightAverage
from neuroclass.training.optim import l1_penalty, lr_factor, make_optimizer, set_lr
from neuroclass.training.state import Clock, FitObjects, StopReason, TrainState

DEFAULT_EPOCHS = 8
DEFAULT_BATCH = 128
BUDGET_EPOCHS = 100_000  # with a time budget and no epoch count, the clock ends training


def resolve_batch_size(requested: int | None, n_train: int) -> int:
    """The requested size (at most the data), or by default 128 lowered to give >= 50 steps an epoch.

    128 rather than 256: twice the steps per epoch for about 5% less speed on 2 CPU cores; with the
    averaged weights the default cnn reached 91% on Fashion-MNIST an epoch sooner (benchmarks/RESULTS.md).

    >>> resolve_batch_size(None, 54000), resolve_batch_size(None, 1300), resolve_batch_size(64, 10)
    (128, 26, 10)
    """
    if requested is not None:
        return max(1, min(requested, n_train))
    return max(1, min(DEFAULT_BATCH, n_train, max(16, n_train // 50)))


def class_weights(y: torch.Tensor, classes: int, how: str, device: torch.device) -> torch.Tensor | None:
    """Per-class loss weights (K,) float32 on ``device`` for ``train.class_weight``: None for
    "none"; for "auto" scikit-learn's "balanced" weights N / (K * n_k) over the classes present in
    ``y`` (int64 labels (N,)), 1 for a class with no training example (its weight never counts).

    >>> class_weights(torch.tensor([0, 0, 0, 1]), 2, "auto", torch.device("cpu")).tolist()
    [0.6666666865348816, 2.0]
    """
    if how == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    labels = y.cpu().numpy()
    present = np.unique(labels)
    weight = np.ones(classes, dtype=np.float32)
    weight[present] = compute_class_weight("balanced", classes=present, y=labels)
    return torch.from_numpy(weight).to(device)


def sampling_weights(y: torch.Tensor, sampler: str) -> torch.Tensor | None:
    """Per-example sampling weights (N,) float64 on the CPU for ``data.sampler``: None for
    "shuffle" (every example once an epoch); for "balanced" 1 / n_k of the example's class, so an
    epoch draws each class about equally often (with replacement: rare examples repeat).

    >>> sampling_weights(torch.tensor([0, 0, 0, 1]), "balanced").tolist()
    [0.3333333333333333, 0.3333333333333333, 0.3333333333333333, 1.0]
    """
    if sampler == "shuffle":
        return None
    labels = y.cpu()
    counts = torch.bincount(labels).double()
    return 1.0 / counts[labels]


def hard_labels(target: torch.Tensor) -> torch.Tensor:
    """Class indices from labels (B,) or soft targets (B, K), where the heaviest class counts.

    >>> hard_labels(torch.tensor([[0.3, 0.7], [0.9, 0.1]]))
    tensor([1, 0])
    """
    return target.argmax(1) if target.ndim == 2 else target


def loss_function(model: nn.Module):
    """The loss(output, target, label_smoothing) that ``model``'s family declares (a Classifier's
    ``loss``): cross-entropy on logits, capsnet's margin loss on capsule lengths. A bare network
    (not a Classifier, e.g. in a test) has no declaration: its outputs are logits."""
    return model.loss if isinstance(model, Classifier) else cross_entropy


class TrainingDiverged(NeuroclassError):
    """The loss became NaN or infinite; the message names the step and the fix."""


@contextlib.contextmanager
def keep_global_generators() -> Iterator[None]:
    """NumPy's and Python's global random generators as they were after the ``with`` block (a
    resumed fit sets them to the checkpoint's; torch's is forked apart by Trainer.fit)."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@dataclass
class Batches:
    """Shuffled mini-batches sliced from resident tensors: no per-sample collation."""

    x: torch.Tensor
    y: torch.Tensor
    batch_size: int
    generator: torch.Generator
    # per-example sampling weights (N,) on the CPU (data.sampler=balanced), None: a shuffle
    weights: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return max(1, len(self.y) // self.batch_size)  # drop the ragged last batch (BatchNorm)

    def order(self) -> torch.Tensor:
        """A new epoch's order of the examples (N,), drawn from ``generator``: a permutation, or N
        draws with replacement in proportion to ``weights``."""
        if self.weights is not None:
            return torch.multinomial(self.weights, len(self.y), replacement=True, generator=self.generator)
        return torch.randperm(len(self.y), generator=self.generator)

    def slices(self, order: torch.Tensor, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches number ``start``, ``start + 1``, ... of the epoch with ``order``: (x, y) pairs."""
        for i in range(start, len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]

    def __iter__(self):
        return self.slices(self.order())


class Trainer:
    """Fits a Classifier on a training Dataset, validating on ``val`` each epoch.

    ``deadline`` (a ``clock()`` value) is when the whole run must end, the caller's evaluation of
    ``reserve_examples`` examples and its ``reserve_seconds`` of other work after fit included;
    ``clock`` (seconds, default ``time.perf_counter``) times steps and validation passes for it.
    ``callbacks`` run after the Trainer's own (time budget, NaN guard, early stopping): a progress
    display is one the caller adds (callbacks.Progress); a CheckpointWriter goes last, to save what
    the others did.

    A fit given a checkpoint (``resume``, training/checkpoint.py) continues the saved one: the
    same steps follow, so a fixed number of epochs ends with the same weights as a fit never
    stopped. A StopRequest callback ends a fit mid-epoch with StopReason.INTERRUPTED.

    Example::

        trainer = Trainer(TrainConfig(epochs=2), OptimConfig(), AugmentConfig(), torch.device("cpu"))
        state = trainer.fit(model, train, val)
    """

    def __init__(self, train_cfg: TrainConfig, optim_cfg: OptimConfig, augment_cfg: AugmentConfig,
                 device: torch.device, deadline: float | None = None,
                 callbacks: list[Callback] | None = None, reserve_examples: int = 0,
                 lr_scales: dict[str, float] | None = None, clock: Clock = time.perf_counter,
                 reserve_seconds: float = 0.0, sampler: str = "shuffle") -> None:
        self.cfg, self.optim_cfg, self.augment_cfg = train_cfg, optim_cfg, augment_cfg
        self.sampler = sampler  # data.sampler: "shuffle" or "balanced" (``sampling_weights``)
        self.device, self.deadline, self.clock = device, deadline, clock
        self.reserve_examples = reserve_examples  # evaluated by the caller after fit, within the budget
        self.reserve_seconds = reserve_seconds  # the caller's other work after fit (the report)
        self.lr_scales = lr_scales  # parameter name -> rate multiplier (discriminative fine-tuning)
        self.average: WeightAverage | None = None  # the weight average of the last fit (train.ema)
        self.callbacks: list[Callback] = [TimeBudget(), NaNGuard()]
        if train_cfg.patience:
            self.callbacks.append(EarlyStopping(train_cfg.patience))
        self.callbacks += callbacks or []

    def _emit(self, hook: str, state: TrainState, model: nn.Module) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(state, model)

    def fit(self, model: nn.Module, train: Dataset, val: Dataset | None,
            resume: Optional[Checkpoint] = None) -> TrainState:
        """Train ``model`` on ``train`` (validating on ``val`` after each epoch) and return the
        fit's state; with ``resume``, continue that checkpoint's fit (same config and data).
        torch's global generator, which dropout draws from, is seeded with train.seed for the fit
        (or set to the checkpoint's) and, like NumPy's and Python's, restored after it.
        Raises TrainingDiverged (a NeuroclassError) when training diverges."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), keep_global_generators():
            torch.manual_seed(self.cfg.seed)
            return self._fit(model, train, val, resume)

    def _fit(self, model: nn.Module, train: Dataset, val: Dataset | None,
             resume: Optional[Checkpoint]) -> TrainState:
        cfg, device = self.cfg, self.device
        if cfg.patience and val is None:
            raise NeuroclassError("train.patience needs a validation split; set data.val_fraction > 0")
        generator = torch.Generator().manual_seed(cfg.seed)  # shuffling and augmentation
        batch_size = resolve_batch_size(cfg.batch_size, len(train))
        batches = Batches(train.x.to(device), train.y.to(device), batch_size, generator,
                          sampling_weights(train.y, self.sampler))
        epochs = cfg.epochs or (BUDGET_EPOCHS if self.deadline else DEFAULT_EPOCHS)
        fmt = memory_format(device, cfg.channels_last, train.x.ndim)
        model.to(device=device, memory_format=fmt)
        optimizer = make_optimizer(model, self.optim_cfg, self.lr_scales)
        self.class_weight = class_weights(train.y, len(train.classes), cfg.class_weight, device)
        augment = self.augment_cfg.enabled and train.kind == "image"
        state = TrainState(max_epochs=epochs, steps_per_epoch=len(batches), deadline=self.deadline,
                           clock=self.clock, val_examples=len(val) if val is not None else 0,
                           reserve_examples=self.reserve_examples, reserve_seconds=self.reserve_seconds)
        # torch.compile pays back its compile time only on long runs (measured 2x slower on 2 CPU
        # cores for small CNNs), so it is opt-in; the weights stay those of ``model``.
        forward = torch.compile(model) if cfg.compile else model
        # validation, the epoch-end callbacks and the returned model see the averaged weights
        self.average = WeightAverage(model, cfg.ema) if cfg.ema else None
        evaluated = self.average.module if self.average else model
        state.objects = FitObjects(model, optimizer, self.average, generator, self.callbacks)
        # on a CPU, reuse activation memory from step to step (device.py); restored after the fit
        with keep_freed_memory() if device.type == "cpu" else contextlib.nullcontext():
            if resume is not None:  # weights, optimizer, average, generators, counters, epoch order
                resume.restore(state)
            self._emit("on_fit_start", state, model)
            if resume is not None:  # after on_fit_start, which resets the callbacks
                resume.restore_callbacks(self.callbacks)
            while state.epoch < epochs and not state.stop:
                model.train()  # first, so that a callback can put layers back in eval mode (FineTune)
                self._emit("on_epoch_start", state, model)
                self._train_epoch(forward, model, batches, optimizer, generator, state, fmt, augment,
                                  len(train.classes))
                if state.diverged or state.stop_reason is StopReason.INTERRUPTED:
                    break  # an interrupted epoch is finished by the fit that resumes it
                self._end_epoch(evaluated, val, state)
            if self.average and not state.diverged:
                self.average.copy_to(model)
            if state.stop_reason is None:
                state.stop_reason, state.stop_detail = StopReason.COMPLETED, f"ran all {epochs} planned epochs"
            self._emit("on_fit_end", state, model)
            state.objects = None  # the optimizer, the average and the callbacks' copies: freed now
        if state.diverged:
            raise TrainingDiverged(f"training diverged: {state.stop_detail}; lower optim.lr "
                                   f"(now {self.optim_cfg.lr:g}) or use --set optim.schedule=onecycle")
        return state

    def _train_epoch(self, forward: nn.Module, model: nn.Module, batches: Batches,
                     optimizer: torch.optim.Optimizer, generator: torch.Generator, state: TrainState,
                     fmt: torch.memory_format, augment: bool, num_classes: int) -> None:
        """The epoch's remaining steps (or until a callback stops), summed into ``state``'s
        epoch_loss_sum, epoch_correct and epoch_seen."""
        if state.step_in_epoch == 0:  # a new epoch; a resumed one continues its order and sums
            state.epoch_order = batches.order()
            state.epoch_loss_sum, state.epoch_correct, state.epoch_seen = 0.0, 0, 0
        criterion = loss_function(model)
        step_start = self.clock()
        for xb, yb in batches.slices(state.epoch_order, state.step_in_epoch):
            state.lr = self.optim_cfg.lr * lr_factor(self.optim_cfg, state.progress())
            set_lr(optimizer, state.lr)
            xb, target = self._augment(xb, yb, generator, num_classes, augment)
            logits = forward(xb.contiguous(memory_format=fmt))  # (B, num_classes)
            # target: labels (B,), or soft targets (B, K) under mixup/cutmix
            loss = criterion(logits, target, self.cfg.label_smoothing, self.class_weight)
            if self.optim_cfg.l1:
                loss = loss + self.optim_cfg.l1 * l1_penalty(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if self.average:
                self.average.update(model)
            state.batch_loss = float(loss.detach())
            state.epoch_loss_sum += state.batch_loss * len(yb)
            state.epoch_correct += int((logits.detach().argmax(1) == hard_labels(target)).sum())
            state.epoch_seen += len(yb)
            state.running_accuracy = state.epoch_correct / state.epoch_seen
            state.record_step(self.clock() - step_start, len(yb))  # steps only, not callbacks
            self._emit("on_batch_end", state, model)
            if state.stop:
                break
            step_start = self.clock()

    def _end_epoch(self, evaluated: nn.Module, val: Dataset | None, state: TrainState) -> None:
        """The epoch's history row (training sums, validation of ``evaluated``), then on_epoch_end."""
        seen = max(1, state.epoch_seen)
        row = {"epoch": state.epoch + 1, "loss": state.epoch_loss_sum / seen,
               "accuracy": state.epoch_correct / seen, "lr": state.lr}
        row.update(self._validate(evaluated, val, state))
        row["time"] = state.elapsed
        state.epoch += 1
        state.history.append(row)
        self._emit("on_epoch_end", state, evaluated)

    def _augment(self, xb: torch.Tensor, yb: torch.Tensor, generator: torch.Generator,
                 num_classes: int, enabled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for one step: augmented floats, and soft targets (B, K) when
        augment.mixup or augment.cutmix is set (like every augmentation, only if augment.enabled)."""
        if not enabled:
            return xb, yb
        xb = augment_batch(xb.float().div_(255.0), self.augment_cfg, generator)
        if self.augment_cfg.mixup or self.augment_cfg.cutmix:
            return mix_batch(xb, yb, num_classes, self.augment_cfg, generator)
        return xb, yb

    def _validate(self, model: nn.Module, val: Dataset | None, state: TrainState) -> dict:
        if val is None:
            return {"val_loss": None, "val_accuracy": None, "val_balanced_accuracy": None, "val_macro_f1": None}
        # the first batch timed apart: a first pass's one-off costs land there (training/state.py)
        batch, channels_last = self.cfg.eval_batch_size, self.cfg.channels_last
        start = self.clock()
        logits = [predict_outputs(model, val.x[:batch], self.device, batch, channels_last)]
        head_seconds = self.clock() - start
        if len(val) > batch:
            logits.append(predict_outputs(model, val.x[batch:], self.device, batch, channels_last))
        state.record_validation(self.clock() - start, len(val), head_seconds, min(batch, len(val)))
        logits = torch.cat(logits)
        predicted, labels = logits.argmax(1).numpy(), val.y.numpy()
        present = np.unique(labels)  # balanced accuracy: the macro recall over the classes present
        return {"val_loss": float(loss_function(model)(logits, val.y, 0.0)),
                "val_accuracy": float((predicted == labels).mean()),
                # the selection metrics of a search (tuning/objective.py prunes on them), over the
                # classes present in the validation split
                "val_balanced_accuracy": float(recall_score(labels, predicted, labels=present, average="macro",
                                                           zero_division=0)),
                "val_macro_f1": float(f1_score(labels, predicted, labels=present, average="macro", zero_division=0))}
