"""Training checkpoints: everything a fit needs to continue where it stopped, without pickle.

A checkpoint is a folder ``ckpt-<sequence>-epoch<E>-step<S>`` in the run's checkpoint folder
(RunFolder.checkpoint_dir), E the epoch in progress (1-based: E - 1 epochs are complete) and S the
optimizer steps done (TrainState.position, as an interrupt's line and a resume's record give them),
with two files: ``tensors.safetensors`` (the live weights, the weight average, the optimizer's
tensors, the epoch's shuffled order, every random generator's state, callbacks' tensors) and
``state.json`` (the rest: epoch and step, the running sums of the epoch in progress, the history
rows, TrainState's timing estimates, the time budget left, the optimizer's settings, NumPy's and
Python's generator states, callbacks' values, and the SHA-256 of the tensor file). A tensor's place
in the JSON is ``{"__tensor__": "<name in the tensor file>"}``.

Writing is atomic (neuroclass/io.py write_folder_atomic: files fsynced in a temporary folder, renamed
into place, the parent fsynced); only then are older checkpoints removed (renamed to a hidden name
first, so that a half-removed one is never read), so a crash, a kill or a full disk at any moment
leaves the last good checkpoint. The writer keeps one checkpoint by default: an atomic write leaves
the newest complete, and a second copy would double the disk a large model takes. Reading takes the
newest checkpoint whose files verify; one damaged on disk is skipped with a warning, for an older
one where a writer keeps more (``keep``).

Example::

    writer = CheckpointWriter(run.checkpoint_dir, every_seconds=300)  # checkpoint_writer.py: the last callback
    Trainer(..., callbacks=[writer]).fit(model, train, val)
    checkpoint = read_checkpoint(run.checkpoint_dir)  # None when there is none
    Trainer(...).fit(model, train, val, resume=checkpoint)
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from neuroclass.errors import NeuroclassError, with_article
from neuroclass.io import fsync_folder, write_folder_atomic
from neuroclass.training.callbacks import Callback
from neuroclass.training.state import StopReason, TrainState

FORMAT, VERSION = "neuroclass-checkpoint", 1
STATE_FILE, TENSOR_FILE = "state.json", "tensors.safetensors"
NAME = re.compile(r"ckpt-(\d{6,})(?:-epoch\d+-step\d+)?")  # ordered by the sequence
STALE_PREFIX = ".old-"  # an older checkpoint being removed
# TrainState fields a checkpoint restores as they were (plain JSON values)
COUNTERS = ("epoch", "step", "lr", "batch_loss", "running_accuracy", "history", "best_epoch",
            "samples_seen", "train_seconds", "first_step_seconds", "first_step_samples",
            "eval_pass_costs", "first_pass_steady_cost", "epoch_loss_sum", "epoch_correct", "epoch_seen",
            "checkpoint_seconds", "checkpoint_share", "checkpoints_written", "checkpoint_write_seconds")


# ----------------------------------------------------------------------------- tensors apart from JSON

def pack(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON, each tensor replaced by {"__tensor__": name} and stored in ``tensors``
    (on the CPU, contiguous, never sharing memory with another). Dict keys must be strings.

    >>> tensors = {}
    >>> pack({"w": torch.ones(2), "n": [1, None]}, "m", tensors), list(tensors)
    ({'w': {'__tensor__': 'm/w'}, 'n': [1, None]}, ['m/w'])
    """
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{key}: checkpoint dict keys must be strings. Got {list(value)!r} instead.")
        return {k: pack(v, f"{key}/{k}", tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [pack(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{key}: a checkpoint holds tensors and JSON values. Got {type(value).__name__} instead.")


def unpack(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of ``pack`` (tuples come back as lists)."""
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        return {k: unpack(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [unpack(v, tensors) for v in value]
    return value


# ----------------------------------------------------------------------------- what a fit holds

def _optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict) -> dict:
    saved = optimizer.state_dict()  # "state" has int keys, which JSON lacks: a list of pairs
    return {"state": [[i, pack(s, f"optimizer/{i}", tensors)] for i, s in saved["state"].items()],
            "param_groups": pack(saved["param_groups"], "optimizer/groups", tensors)}


def _load_optimizer(optimizer: torch.optim.Optimizer, saved: dict, tensors: dict) -> None:
    groups = unpack(saved["param_groups"], tensors)
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": {i: unpack(s, tensors) for i, s in saved["state"]},
                               "param_groups": groups})
    # load_state_dict keeps the saved (contiguous) layout; the step kernels expect the parameter's
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for param in params:
        for name, value in optimizer.state.get(param, {}).items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                optimizer.state[param][name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _random_state(model: nn.Module, generator: torch.Generator, tensors: dict) -> dict:
    """Every generator a step draws from: torch's global one (dropout), the fit's generator
    (shuffling, augmentation), CUDA's where the model is on a GPU, NumPy's and Python's."""
    tensors["random/torch"] = torch.get_rng_state()
    tensors["random/generator"] = generator.get_state()
    device = next(iter(model.parameters()), torch.zeros(0)).device
    if device.type == "cuda":
        tensors["random/cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        tensors["random/mps"] = torch.mps.get_rng_state()
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["random/numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    return {"numpy": [kind, int(pos), int(has_gauss), float(gauss)], "python": [version, list(internal), gauss_next],
            "cuda_device": (device.index or 0) if device.type == "cuda" else None}


def _load_random(saved: dict, generator: torch.Generator, tensors: dict) -> None:
    torch.set_rng_state(tensors["random/torch"])
    generator.set_state(tensors["random/generator"])
    if saved["cuda_device"] is not None and "random/cuda" in tensors:
        torch.cuda.set_rng_state(tensors["random/cuda"], saved["cuda_device"])
    if "random/mps" in tensors and torch.backends.mps.is_available():
        torch.mps.set_rng_state(tensors["random/mps"])
    kind, pos, has_gauss, gauss = saved["numpy"]
    np.random.set_state((kind, tensors["random/numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = saved["python"]
    random.setstate((version, tuple(internal), gauss_next))


def capture(state: TrainState) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and the JSON record of a fit at the end of a step or an epoch: the objects of
    ``state.objects`` (set by the Trainer) and ``state``'s counters. A stop by INTERRUPTED is not
    recorded (the resumed fit continues); any other stop is."""
    objects, tensors = state.objects, {}
    record = {"format": FORMAT, "version": VERSION, "epoch": state.epoch, "step": state.step,
              "step_in_epoch": state.step_in_epoch,
              "state": {name: getattr(state, name) for name in COUNTERS},
              "recent_steps": list(state.recent_steps), "elapsed": state.elapsed,
              "budget_left": state.deadline - state.clock() if state.deadline is not None else None,
              "model": pack(objects.model.state_dict(), "model", tensors),
              "optimizer": _optimizer_state(objects.optimizer, tensors),
              "random": _random_state(objects.model, objects.generator, tensors),
              "callbacks": [{"type": type(c).__name__, "state": pack(saved, f"callbacks/{i}", tensors)}
                            for i, c in enumerate(objects.callbacks) if (saved := c.state_dict())]}
    if objects.average is not None:
        record["average"] = {"updates": objects.average.updates,
                             "weights": pack(objects.average.average.state_dict(), "average", tensors)}
    if state.epoch_order is not None:
        tensors["epoch/order"] = state.epoch_order
    if state.stop and state.stop_reason is not StopReason.INTERRUPTED:
        record["stop"] = {"reason": state.stop_reason.value, "detail": state.stop_detail}
    return tensors, record


@dataclass
class Checkpoint:
    """A checkpoint read back and verified: ``record`` (state.json) and its ``tensors``."""

    path: Path
    record: dict
    tensors: dict[str, torch.Tensor]

    @property
    def epoch(self) -> int:
        return self.record["epoch"]

    @property
    def step(self) -> int:
        return self.record["step"]

    @property
    def position(self) -> tuple[int, int]:
        """(epoch in progress, 1-based; optimizer steps done): TrainState.position when saved."""
        return self.record["epoch"] + 1, self.record["step"]

    @property
    def budget_left(self) -> Optional[float]:
        """Seconds of the run's time budget that were left (None without a budget)."""
        return self.record["budget_left"]

    def restore(self, state: TrainState) -> None:
        """Put the saved fit into ``state`` and ``state.objects`` (built as the saved fit's were):
        weights, optimizer, weight average, generators, counters, the epoch's order and sums.
        Raises NeuroclassError when they do not match the saved ones."""
        objects, record, tensors = state.objects, self.record, self.tensors
        if (objects.average is None) != ("average" not in record):
            raise NeuroclassError(f"{self.path}: saved with{'out' if 'average' not in record else ''} a "
                                  "weight average (train.ema), unlike this fit; resume with the run's own config")
        try:
            objects.model.load_state_dict(unpack(record["model"], tensors))
            if objects.average is not None:
                objects.average.average.load_state_dict(unpack(record["average"]["weights"], tensors))
                objects.average.updates = record["average"]["updates"]
            _load_optimizer(objects.optimizer, record["optimizer"], tensors)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise NeuroclassError(f"{self.path}: does not fit this model ({str(exc).splitlines()[0]}); "
                                  "resume with the run's own config") from None
        _load_random(record["random"], objects.generator, tensors)
        for name in COUNTERS:  # a field added since the checkpoint was written keeps its start value
            setattr(state, name, record["state"].get(name, getattr(state, name)))
        state.recent_steps.clear()
        state.recent_steps.extend(record["recent_steps"])
        state.start = state.clock() - record["elapsed"]
        state.epoch_order = tensors.get("epoch/order")
        if "stop" in record:
            state.request_stop(StopReason(record["stop"]["reason"]), record["stop"]["detail"])
        if state.deadline is not None:
            state.end = None  # planned again from the restored estimates and the new deadline
            state.steps_left()

    def restore_callbacks(self, callbacks: list[Callback]) -> None:
        """Each saved callback state back into the callback of its type, in order (after
        on_fit_start, which resets them). Callbacks without state (a progress display) may differ.
        Raises NeuroclassError when a saved state has no callback of its type."""
        remaining = list(callbacks)
        for entry in self.record["callbacks"]:
            match = next((c for c in remaining if type(c).__name__ == entry["type"]), None)
            if match is None:
                raise NeuroclassError(f"{self.path}: holds the state of {with_article(entry['type'])} callback "
                                      "that this fit lacks; resume with the run's own config")
            remaining = remaining[remaining.index(match) + 1:]
            match.load_state_dict(unpack(entry["state"], self.tensors))


# ----------------------------------------------------------------------------- files

class CheckpointWriteError(NeuroclassError):
    """A checkpoint could not be written (full disk, file-size limit, permissions); the message
    names the folder and the fix, and the checkpoints already there are intact."""


def checkpoint_folders(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(sequence, path) of the complete checkpoints in ``folder``, oldest first ([] when none)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := NAME.fullmatch(p.name)) and p.is_dir()]
    return sorted(found)


def write_checkpoint(folder: str | os.PathLike, sequence: int, tensors: dict[str, torch.Tensor],
                     record: dict, keep: int = 1,
                     before_rename: Optional[Callable[[Path], None]] = None) -> Path:
    """Write ``ckpt-<sequence>-epoch<E>-step<S>`` (the record's position) into ``folder``
    atomically, then remove all but the ``keep`` newest. ``before_rename(tmp)`` runs once the files
    are on disk in their temporary folder, just before it is renamed into place
    (io.write_folder_atomic).

    Raises CheckpointWriteError (a NeuroclassError) naming the folder and the fix when it cannot be
    written (full disk, file-size limit, permissions); the checkpoints already there are then left
    as they were."""
    folder = Path(folder)
    blob = save_tensors(tensors, metadata={"format": FORMAT})
    record = {**record, "sequence": sequence, "tensors_sha256": hashlib.sha256(blob).hexdigest(),
              "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    files = {TENSOR_FILE: blob, STATE_FILE: json.dumps(record).encode("utf-8")}
    try:
        folder.mkdir(exist_ok=True)
        name = f"ckpt-{sequence:06d}-epoch{record['epoch'] + 1}-step{record['step']}"
        path = write_folder_atomic(folder / name, files, before_rename=before_rename)
    except OSError as exc:
        raise CheckpointWriteError(f"{folder}: cannot write a checkpoint ({exc.strerror or exc}); free disk "
                                   f"space or make the folder writable, then continue with "
                                   f"'neuroclass train --resume {folder.parent}'") from None
    _remove_older(folder, keep)
    return path


def _remove_older(folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` newest checkpoints: each renamed to a hidden name first (a
    removal cut short leaves no damaged ``ckpt-*`` folder), then deleted. Failures are left for
    the next writer's start to sweep: the new checkpoint is in place already."""
    for _, older in checkpoint_folders(folder)[:-keep]:
        hidden = folder / f"{STALE_PREFIX}{older.name}"
        try:
            older.rename(hidden)
        except OSError:
            continue
        shutil.rmtree(hidden, ignore_errors=True)
    try:
        fsync_folder(folder)
    except OSError:  # the removals may not survive a power cut; the newest checkpoint does
        pass


def _read_one(path: Path) -> Checkpoint:
    """One checkpoint folder, verified; ValueError saying what is wrong with it."""
    try:
        record = json.loads((path / STATE_FILE).read_text())
        blob = (path / TENSOR_FILE).read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("version") != VERSION:
        raise ValueError(f"not a version-{VERSION} {FORMAT}")
    if hashlib.sha256(blob).hexdigest() != record.get("tensors_sha256"):
        raise ValueError(f"{TENSOR_FILE} does not match its checksum")
    return Checkpoint(path, record, load_tensors(blob))


def read_checkpoint(folder: str | os.PathLike) -> Optional[Checkpoint]:
    """The newest checkpoint in ``folder`` whose files verify; a damaged newer one is skipped with
    a warning. None when the folder holds none. Raises NeuroclassError when every one is damaged."""
    found = checkpoint_folders(folder)
    for _, path in reversed(found):
        try:
            return _read_one(path)
        except ValueError as exc:
            warnings.warn(f"{path}: damaged checkpoint ({exc}); trying the one before it", stacklevel=2)
    if found:
        raise NeuroclassError(f"{folder}: no usable checkpoint (all {len(found)} damaged); train the run again")
    return None
