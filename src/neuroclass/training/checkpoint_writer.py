"""The callback that writes a fit's checkpoints (training/checkpoint.py holds their format): after
epochs, spaced to a share of training time, every few minutes inside long epochs, and on an
interrupt."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

from torch import nn

from neuroclass.training.callbacks import Callback
from neuroclass.training.checkpoint import STALE_PREFIX, capture, checkpoint_folders, write_checkpoint
from neuroclass.training.state import Clock, StopReason, TrainState


class CheckpointWriter(Callback):
    """Writes a checkpoint into ``folder`` after epochs, every ``every_seconds`` of ``clock``
    inside an epoch (0: only after epochs), and when a stop request (StopReason.INTERRUPTED)
    ends the fit. Put it last in the callback list, so that what every other callback did in a
    step or an epoch is saved with it (a progress display prints an epoch's line at the next
    hook, after it was saved). ``keep``: checkpoints kept (the newest). ``before_rename(tmp)``:
    called once a checkpoint's files are on disk, before it is renamed into place.

    ``share`` (0 < share <= 1; 1: after every epoch) bounds the share of training time that
    epoch-end writes take: an epoch's write is skipped while the last write is younger than its
    duration x (1 - share) / share, so that an interrupted run repeats at most the longer of one
    epoch and that spacing. The fit's first epoch-end write (which measures the cost) and an
    interrupt's write always happen. Raises ValueError for a ``share`` outside (0, 1].

    Each write is counted in ``state.checkpoints_written`` and timed with ``clock`` into
    ``state.checkpoint_write_seconds`` (the sum), ``state.checkpoint_seconds`` (the longest) and
    ``state.checkpoint_share`` (the share of training time periodic writes add), which a time
    budget reserves, with the spacing (``state.epoch_checkpoint_share``; training/state.py).
    Raises CheckpointWriteError (from the hook that writes) when the folder cannot be written.
    """

    def __init__(self, folder: str | os.PathLike, every_seconds: float = 0.0,
                 clock: Clock = time.perf_counter, keep: int = 1,
                 before_rename: Optional[Callable[[Path], None]] = None, share: float = 1.0) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1]. Got {share!r} instead.")
        self.folder, self.every_seconds, self.clock, self.keep = Path(folder), every_seconds, clock, keep
        self.before_rename, self.share = before_rename, share
        self.last: Optional[float] = None  # clock() at the end of the last write (at fit start before one)
        self.last_cost: Optional[float] = None  # seconds of this fit's last write (None before one)

    def on_fit_start(self, state: TrainState, model: nn.Module) -> None:
        self.last, self.last_cost = self.clock(), None
        state.epoch_checkpoint_share = self.share
        if self.folder.is_dir():  # the temporary folders of writes (and removals) a kill cut short
            for stale in [*self.folder.glob(".tmp-ckpt-*"), *self.folder.glob(f"{STALE_PREFIX}*")]:
                shutil.rmtree(stale, ignore_errors=True)

    def on_batch_end(self, state: TrainState, model: nn.Module) -> None:
        if state.diverged:  # never save weights that a non-finite loss has reached
            return
        if state.stop:  # interrupted: saved for the resume; any other stop: the epoch-end write follows
            if state.stop_reason is StopReason.INTERRUPTED:
                self.write(state)
            return
        if self.every_seconds > 0 and self.clock() - self.last >= self.every_seconds:
            self.write(state)

    def on_epoch_end(self, state: TrainState, model: nn.Module) -> None:
        if self.due(self.clock()):
            self.write(state)

    def due(self, now: float) -> bool:
        """Whether an epoch-end write at ``now`` (a ``clock`` reading) keeps within ``share``: the
        fit's first one is, and then one once the last is as old as its cost x (1 - share) / share."""
        if self.last_cost is None or self.share >= 1:
            return True
        return now - self.last >= self.last_cost * (1 - self.share) / self.share

    def write(self, state: TrainState) -> Path:
        """Save ``state`` now; returns the new checkpoint's folder."""
        start = self.clock()
        found = checkpoint_folders(self.folder)
        sequence = found[-1][0] + 1 if found else 1
        state.checkpoints_written += 1  # before the capture: a resume from it counts it
        tensors, record = capture(state)
        path = write_checkpoint(self.folder, sequence, tensors, record, self.keep, self.before_rename)
        self.last = self.clock()
        self.last_cost = self.last - start
        state.checkpoint_write_seconds += self.last_cost
        state.checkpoint_seconds = max(state.checkpoint_seconds, self.last_cost)
        if self.every_seconds > 0:
            state.checkpoint_share = state.checkpoint_seconds / self.every_seconds
        return path
