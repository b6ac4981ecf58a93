"""The training loop: epochs of shuffled mini-batches, one gradient-descent update per batch, a
measurement on the validation rows after each epoch (loss, accuracy, and scikit-learn's balanced
accuracy and macro F1), and a stop at a deadline.

Time is read from an injected ``clock`` (``time.monotonic`` by default), so that a test drives the
deadline with a fake clock. The deadline is checked before every batch and ``on_batch``, a caller's
hook (a progress display, a request to stop), runs after every update: training stops between two
updates, never inside one.

>>> from neuroclass.glassbox.network import Network
>>> from neuroclass.glassbox.options import glassbox_options
>>> rng = np.random.default_rng(0)
>>> x = rng.random((40, 2), dtype=np.float32); y = (x[:, 0] > x[:, 1]).astype(np.int64)
>>> net = Network(glassbox_options({"hidden": [8], "batch_size": 8}), 2, 2, seed=0)
>>> history = fit(net, x, y, epochs=3)
>>> [record.epoch for record in history.epochs], history.stop
([1, 2, 3], <FitStop.EPOCHS: 'epochs'>)
"""
from __future__ import annotations

import enum
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import inputs
from neuroclass.glassbox.network import Network


class FitStop(enum.Enum):
    """Why ``fit`` returned."""

    EPOCHS = "epochs"  # every epoch asked for ran
    DEADLINE = "deadline"  # the clock reached the deadline
    CALLBACK = "callback"  # on_epoch returned True
    REQUESTED = "requested"  # on_batch returned True: stopped between two updates


@dataclass(frozen=True)
class EpochRecord:
    """One epoch's numbers.

    ``train_loss``: the mean over the epoch's examples of each batch's loss, measured just before
    that batch's update (penalties not included); ``train_accuracy``: the share of the epoch's
    examples classified right, likewise before their update; ``val_loss`` / ``val_accuracy``: on the
    validation rows after the epoch (None without them); ``seconds``: the epoch's training time by
    the clock, validation left out; ``examples``: the examples trained on, fewer than the training
    rows when the deadline cut the epoch short; ``val_balanced_accuracy`` / ``val_macro_f1``: the
    mean recall and the mean F1 of the classes present in the validation rows (``class_scores``;
    None without them).
    """

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: Optional[float]
    val_accuracy: Optional[float]
    seconds: float
    examples: int
    val_balanced_accuracy: Optional[float] = None
    val_macro_f1: Optional[float] = None


# after each update: (the batch's loss, its examples classified right, its examples) -> True to stop
BatchHook = Callable[[float, int, int], Optional[bool]]


@dataclass
class History:
    """The epochs trained, in order, and why training stopped."""

    epochs: list[EpochRecord] = field(default_factory=list)
    stop: FitStop = FitStop.EPOCHS


def class_scores(y: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """(balanced accuracy, macro F1) of the predicted classes ``predicted`` (N,) against the labels
    ``y`` (N,): the mean recall and the mean F1 score over the classes present in ``y``
    (scikit-learn's recall_score and f1_score, average="macro"; a class never predicted scores 0).

    >>> class_scores(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]))
    (0.5, 0.42857142857142855)
    """
    from sklearn.metrics import f1_score, recall_score  # loaded with the first validation, not with the package

    present = np.unique(y)
    return (float(recall_score(y, predicted, labels=present, average="macro", zero_division=0)),
            float(f1_score(y, predicted, labels=present, average="macro", zero_division=0)))


def _validation(network: Network, x_val: Optional[np.ndarray], y_val: Optional[np.ndarray],
                predicted: Optional[np.ndarray]) -> tuple[Optional[float], ...]:
    """The validation columns of an epoch's record: (loss, accuracy, balanced accuracy, macro F1)
    on the rows ``x_val`` (N, D) with labels ``y_val`` (N,), the predicted classes written into
    ``predicted`` (N,) int64; all None without validation rows."""
    if x_val is None:
        return None, None, None, None
    loss, accuracy = network.evaluate(x_val, y_val, predicted)
    return (loss, accuracy, *class_scores(y_val, predicted))


def _train_epoch(network: Network, x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator,
                 deadline: Optional[float], clock: Callable[[], float],
                 on_batch: Optional[BatchHook]) -> tuple[float, int, int, Optional[FitStop]]:
    """One pass over the rows in a random order: (sum of batch loss x batch size, examples
    classified right before their update, examples trained on, whether the deadline cut it short)."""
    order = rng.permutation(len(x))
    buffer = np.empty((min(batch_size, len(x)), x.shape[1]), np.float32)  # one batch, reused every step
    loss_sum, correct, seen = 0.0, 0, 0
    for start in range(0, len(x), batch_size):
        if deadline is not None and clock() >= deadline:
            return loss_sum, correct, seen, FitStop.DEADLINE
        rows = order[start:start + batch_size]
        if len(rows) == 1 and network.has_batch_norm and len(x) > 1:
            continue  # a last batch of one example: batch statistics need two
        # mode="clip" (the rows are valid anyway): np.take writes straight into the buffer
        batch = np.take(x, rows, axis=0, out=buffer[:len(rows)], mode="clip")
        loss, right = network.train_step(batch, y[rows])
        loss_sum, correct, seen = loss_sum + loss * len(rows), correct + right, seen + len(rows)
        if on_batch is not None and on_batch(loss, right, len(rows)):
            return loss_sum, correct, seen, FitStop.REQUESTED
    return loss_sum, correct, seen, None


def fit(network: Network, x_train: np.ndarray, y_train: np.ndarray, x_val: Optional[np.ndarray] = None,
        y_val: Optional[np.ndarray] = None, epochs: int = 10, batch_size: Optional[int] = None, seed: int = 0,
        deadline: Optional[float] = None, clock: Callable[[], float] = time.monotonic,
        on_epoch: Optional[Callable[[EpochRecord], Optional[bool]]] = None,
        threads: Optional[int] = None, on_batch: Optional[BatchHook] = None) -> History:
    """Train ``network`` in place on rows ``x_train`` (N, D) with labels ``y_train`` (N,) int.

    ``batch_size``: examples per update (None: the options' ``batch_size``); ``seed``: the order
    of the examples each epoch (np.random.Generator); ``deadline``: a ``clock()`` reading at which
    training stops, before the next batch; ``on_epoch(record)``: called after each epoch (with the
    record of a cut one too), may return True to stop; ``on_batch(loss, right, examples)``: called
    after each update with the batch's loss and examples classified right (both measured before
    the update) and its examples, may return True to stop before the next batch (the epoch so far
    is then measured and recorded, as one the deadline cut); ``threads``: the BLAS threads of the matrix
    products while training, restored afterwards (None: as the process has them; a small
    network's products are too short to share among threads on a busy machine). With the same
    network seed, data and ``seed``, the weights come out bit-identical. Inputs are converted to
    float32 once.

    Raises NeuroclassError for bad rows or labels (``inputs``), x_val without y_val, or
    epochs / batch_size < 1.
    """
    batch_size = network.options.batch_size if batch_size is None else batch_size
    if epochs < 1 or batch_size < 1:
        raise NeuroclassError(f"glassbox fit: epochs and batch_size must be >= 1; got epochs={epochs}, "
                              f"batch_size={batch_size}")
    x = inputs.rows(x_train, network.n_inputs, "x_train")
    y = inputs.labels(y_train, len(x), network.n_classes, "y_train")
    if (x_val is None) != (y_val is None):
        raise NeuroclassError("glassbox fit: pass x_val and y_val together, or neither")
    if x_val is not None:
        x_val = inputs.rows(x_val, network.n_inputs, "x_val")
        y_val = inputs.labels(y_val, len(x_val), network.n_classes, "y_val")
    with _blas_threads(threads):
        return _epochs(network, (x, y, x_val, y_val), epochs, batch_size, np.random.default_rng(seed), deadline,
                       clock, (on_epoch, on_batch))


def _blas_threads(threads: Optional[int]):
    """A context holding the BLAS thread pools to ``threads`` and restoring them (threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    return nullcontext() if threads is None else threadpool_limits(limits=threads, user_api="blas")


def _epochs(network: Network, data: tuple, epochs: int, batch_size: int, rng: np.random.Generator,
            deadline: Optional[float], clock: Callable[[], float], hooks: tuple) -> History:
    """The epochs of ``fit``, on checked inputs ``data`` (x, y, x_val, y_val), with its ``hooks``
    (on_epoch, on_batch)."""
    (x, y, x_val, y_val), (on_epoch, on_batch) = data, hooks
    history = History()
    predicted = None if y_val is None else np.empty(len(y_val), np.int64)  # each epoch's, reused
    for epoch in range(1, epochs + 1):
        start = clock()
        loss_sum, correct, seen, cut = _train_epoch(network, x, y, batch_size, rng, deadline, clock, on_batch)
        seconds = clock() - start
        if seen == 0:  # the deadline came before the epoch's first batch
            history.stop = FitStop.DEADLINE
            break
        val_loss, val_accuracy, balanced, macro_f1 = _validation(network, x_val, y_val, predicted)
        record = EpochRecord(epoch, loss_sum / seen, correct / seen, val_loss, val_accuracy, seconds, seen,
                             balanced, macro_f1)
        history.epochs.append(record)
        stop_asked = on_epoch is not None and on_epoch(record)
        if cut or stop_asked:
            history.stop = cut or FitStop.CALLBACK
            break
    return history
