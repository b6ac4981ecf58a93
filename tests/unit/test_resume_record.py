"""What a resumed run records and says: totals over every session, one epoch/step convention, the
resume's first line, and files byte for byte those of a run never interrupted."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from neuroclass.cli import main
from neuroclass.pipeline import RunInterrupted, resume, train
from neuroclass.runs import RunFolder
from neuroclass.runs.model_file import save_tensors
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.checkpoint import checkpoint_folders
from conftest import quick_config


class FakeClock:
    """Seconds that pass only where a Tick says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tick(Callback):
    """Ten seconds of ``clock`` after each step; requests ``stop`` after step ``stop_at``."""

    def __init__(self, clock: FakeClock, stop: StopRequest | None = None, stop_at: int = 0) -> None:
        self.clock, self.stop, self.stop_at = clock, stop, stop_at

    def on_batch_end(self, state, model):
        self.clock.now += 10.0
        if self.stop is not None and state.step == self.stop_at:
            self.stop.request("test stop")


def interrupted(out, clock: FakeClock, stop_at: int = 7, **settings):
    """A run of quick_config (3 epochs of 5 steps) asked to stop after step ``stop_at``: the run's
    StopRequest comes before the Tick, so it stops at the end of the next step."""
    stop = StopRequest()
    with pytest.raises(RunInterrupted) as caught:
        train(quick_config(out, **settings), callbacks=[Tick(clock, stop, stop_at)], report=False, stop=stop,
              clock=clock)
    return caught.value


def test_totals_of_a_resumed_run_cover_every_session(tmp_path):
    clock = FakeClock()
    stopped = interrupted(tmp_path, clock)  # 8 steps: 80 s
    result = resume(stopped.path, callbacks=[Tick(clock)], report=False, clock=clock)  # 7 more: 70 s
    timing = RunFolder(result.path).timing()
    assert timing["resumed"][0]["seconds_before"] == 80.0
    assert timing["total_seconds"] == 150.0  # the two sessions, not the last alone
    # every second of this clock passes in the Tick, after its step is timed: training time counts
    # the steps alone (not callbacks), in both sessions
    assert timing["train_seconds"] == 0.0 and timing["epochs"] == 3


def test_the_interrupt_line_the_checkpoint_and_the_resume_record_agree(tmp_path, caplog):
    stopped = interrupted(tmp_path, FakeClock(), stop_at=7, **{"train.quiet": "false"})  # step 8: epoch 2's 3rd
    assert "test stop at epoch 2, step 8" in str(stopped)
    (name,) = [p.name for _, p in checkpoint_folders(stopped.path / "checkpoint")]
    assert name.endswith("-epoch2-step8")
    with caplog.at_level(logging.INFO, logger="neuroclass"):
        result = resume(stopped.path, report=False)
    assert caplog.records[0].getMessage() == f"resuming {stopped.path} at epoch 2, step 8 (no time budget)"
    assert [(r["epoch"], r["step"]) for r in RunFolder(result.path).timing()["resumed"]] == [(2, 8)]


def test_a_quiet_run_resumes_without_a_line(tmp_path, caplog):
    stopped = interrupted(tmp_path, FakeClock())  # quick_config records train.quiet=true
    with caplog.at_level(logging.INFO, logger="neuroclass"):
        resume(stopped.path, report=False)
    assert not [r for r in caplog.records if r.getMessage().startswith("resuming")]


def test_the_cli_resume_prints_where_it_resumes_first(tmp_path, capsys):
    stopped = interrupted(tmp_path, FakeClock(), **{"train.quiet": "false", "train.time_budget": 600})
    capsys.readouterr()
    assert main(["train", "--resume", str(stopped.path), "--no-report"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"resuming {stopped.path} at epoch 2, step 8 (time budget left: ")


def test_a_resumed_run_writes_the_same_model_and_metrics_bytes(tmp_path):
    reference = train(quick_config(tmp_path / "a"), report=False)
    stopped = interrupted(tmp_path / "b", FakeClock())
    result = resume(stopped.path, report=False)
    for name in ("model.safetensors", "metrics.json"):
        assert (result.path / name).read_bytes() == (reference.path / name).read_bytes(), name


def test_the_same_weights_save_to_the_same_bytes():
    # safetensors orders metadata by a hash map whose order changes from save to save: with one
    # metadata key there is no order to change (two keys gave one order in 2^7 for eight saves)
    blobs = {save_tensors({"w": torch.ones(2), "b": torch.zeros(3)}) for _ in range(8)}
    (blob,) = blobs
    header = json.loads(blob[8:8 + int.from_bytes(blob[:8], "little")])
    assert header["__metadata__"] == {"format": "pt"}


def test_timing_counts_every_checkpoint_write_and_its_seconds_over_the_sessions(tmp_path):
    clock, writes = FakeClock(), []

    def slow_write(tmp):  # each write takes 2 s of the clock, between its start and its end
        writes.append(tmp)
        clock.now += 2.0

    stop = StopRequest()
    with pytest.raises(RunInterrupted) as caught:
        train(quick_config(tmp_path), callbacks=[Tick(clock, stop, 7)], report=False, stop=stop, clock=clock,
              before_rename=slow_write)
    first_session = len(writes)  # epoch 1's and the interrupt's
    result = resume(caught.value.path, callbacks=[Tick(clock)], report=False, clock=clock, before_rename=slow_write)
    timing = RunFolder(result.path).timing()
    assert first_session == 2 and len(writes) > first_session
    assert timing["checkpoints_written"] == len(writes)
    assert timing["checkpoint_write_seconds"] == pytest.approx(2.0 * len(writes))
