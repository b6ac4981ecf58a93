"""A run's resume record (checkpoint/resume.json): what a resume needs besides a checkpoint, and
the sessions a run has trained in.

The record holds the run's command, the time budget's plan, the data's content hash, each resume
("resumed": when, where and the seconds of the sessions before it) and the seconds of each session
that ended by an interrupt ("session_seconds"). A position is TrainState.position's: the epoch in
progress, counted from 1, and the optimizer steps done.

Example::

    record = with_resume(run.resume_record(), read_checkpoint(run.checkpoint_dir))
    record["resumed"][-1]
    # -> {"at": "2026-...", "epoch": 2, "step": 8, "seconds_before": 80.0, "checkpoint_seconds": 0.1}
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from neuroclass.training.checkpoint import Checkpoint

EMPTY = {"command": "", "plan": {"model_size": None, "auto_augment": None}, "resumed": [], "session_seconds": []}


def with_resume(record: dict, checkpoint: Optional[Checkpoint]) -> dict:
    """``record`` with one more resume from ``checkpoint`` (None: from the start), now (UTC). Its
    "seconds_before" sums the sessions recorded at their interrupts, or, where that is less (a
    session killed without a record), the checkpoint's training time. Its "checkpoint_seconds":
    the seconds of writing ``checkpoint`` itself, which the checkpoint cannot hold (0.0 unless
    the session that wrote it recorded them at its interrupt)."""
    record = {**EMPTY, **record}
    epoch, step = checkpoint.position if checkpoint else (1, 0)
    before = max(sum(record["session_seconds"]), checkpoint.record["elapsed"] if checkpoint else 0.0)
    recorded = record.pop("checkpoint_write_seconds", 0.0)  # the last interrupt's: used once, here
    saved = checkpoint.record["state"].get("checkpoint_write_seconds", 0.0) if checkpoint else None
    unsaved = max(0.0, recorded - saved) if saved is not None else 0.0
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record["resumed"] = [*record["resumed"], {"at": at, "epoch": epoch, "step": step, "seconds_before": before,
                                              "checkpoint_seconds": unsaved}]
    return record


def with_session(record: dict, seconds: float, checkpoint_seconds: float = 0.0) -> dict:
    """``record`` with one more session of ``seconds`` that ended by an interrupt, and the run's
    seconds of checkpoint writes then (TrainState.checkpoint_write_seconds, the interrupt's
    write included)."""
    return {**EMPTY, **record, "session_seconds": [*record.get("session_seconds", []), seconds],
            "checkpoint_write_seconds": checkpoint_seconds}


def checkpoint_totals(state_count: int, state_seconds: float, record: dict) -> dict:
    """timing.json's checkpoint entries: the writes of every session (``state_count`` and
    ``state_seconds``, a TrainState's) with the seconds of the checkpoints resumed from."""
    unsaved = sum(r.get("checkpoint_seconds", 0.0) for r in record.get("resumed", []))
    return {"checkpoints_written": state_count, "checkpoint_write_seconds": state_seconds + unsaved}


def resume_line(path: object, record: dict, budget_left: Optional[float]) -> str:
    """The line that opens a resume: where it resumes ``record``'s last resume and the time budget
    left (seconds; None without a budget).

    >>> resume_line("runs/.partial-x", {"resumed": [{"epoch": 2, "step": 8}]}, 75.4)
    'resuming runs/.partial-x at epoch 2, step 8 (time budget left: 75s)'
    """
    last = record["resumed"][-1]
    left = f"time budget left: {budget_left:.0f}s" if budget_left is not None else "no time budget"
    return f"resuming {path} at epoch {last['epoch']}, step {last['step']} ({left})"
