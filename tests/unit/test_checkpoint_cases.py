"""Checkpoints and resume: the writer's place and timing, stops mid-epoch, run-folder locks and
leftovers, data hashing, quiet resumes, and features that keep state across a resume."""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import shutil

import numpy as np
import pytest
import torch

from neuroclass.api import train as api_train
from neuroclass.cli.train import _interrupted_line
from neuroclass.config import OptimConfig
from neuroclass.data.blocks import make_blocks
from neuroclass.errors import NeuroclassError
from neuroclass.pipeline import RunInterrupted, resume, train
from neuroclass.runs import RunFolder
from neuroclass.training.callbacks import Callback, Progress, StopRequest
from neuroclass.training.checkpoint import checkpoint_folders, read_checkpoint
from neuroclass.training.checkpoint_writer import CheckpointWriter
from neuroclass.training.state import StopReason, TrainState
from neuroclass.training.trainer import Trainer
from conftest import quick_config
from test_checkpoint import AUGMENT, FIT, TRAIN, VAL, RequestAt, same_weights, tiny_mlp, without_times


class EpochLog(Callback):
    """A user callback with state across epochs: the epochs it has seen end."""

    def on_fit_start(self, state, model):
        self.seen = []

    def on_epoch_end(self, state, model):
        self.seen.append(state.epoch)

    def state_dict(self):
        return {"seen": list(self.seen)}

    def load_state_dict(self, saved):
        self.seen = list(saved["seen"])


class CrashAtEpoch(Callback):
    """Fails as epoch ``epoch`` + 1 starts: a crash right after epoch ``epoch``'s checkpoint."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_start(self, state, model):
        if state.epoch == self.epoch:
            raise RuntimeError("crash")


def test_a_user_callbacks_epoch_end_state_is_in_that_epochs_checkpoint(tmp_path):
    every_epoch = {"train.checkpoint_share": 1}  # a checkpoint after every epoch, however short
    reference = EpochLog()
    train(quick_config(tmp_path / "a", **every_epoch), callbacks=[reference], report=False)
    with pytest.raises(RuntimeError, match="crash"):
        train(quick_config(tmp_path / "b", **every_epoch), callbacks=[EpochLog(), CrashAtEpoch(2)], report=False)
    (partial,) = (tmp_path / "b" / "runs").glob(".partial-*")
    assert read_checkpoint(partial / "checkpoint").epoch == 2
    resumed = EpochLog()
    resume(partial, callbacks=[resumed], report=False)
    assert resumed.seen == reference.seen == [1, 2, 3]


def test_progress_prints_an_epochs_line_after_every_epoch_end_hook(tmp_path):
    class Stream:
        lines: list = []

        def write(self, text):
            self.lines.append(text)

        def flush(self):
            pass

    stream, order = Stream(), []

    class Saved(Callback):  # stands for the checkpoint writer, the last callback
        def on_epoch_end(self, state, model):
            order.append(("saved", state.epoch, len([t for t in stream.lines if t.startswith("epoch")])))

    Trainer(FIT, OptimConfig(), AUGMENT, torch.device("cpu"), callbacks=[Progress(stream), Saved()]).fit(
        tiny_mlp(), TRAIN, VAL)
    # when epoch n is saved, n - 1 epoch lines are out: the line follows the save
    assert order == [("saved", n, n - 1) for n in (1, 2, 3, 4)]
    assert len([t for t in stream.lines if t.startswith("epoch")]) == 4


def test_a_periodic_checkpoint_never_records_a_stop_before_its_epoch_ends(tmp_path):
    now = [0.0]

    class Tick(Callback):  # each step takes 10 s of the fake clock
        def on_batch_end(self, state, model):
            now[0] += 10.0

    clock = lambda: now[0]  # noqa: E731
    writer = CheckpointWriter(tmp_path, every_seconds=10.0, clock=clock, keep=100)
    # the budget ends training at step 14, inside epoch 2, where a periodic write is due too
    stopped = Trainer(FIT, OptimConfig(), AUGMENT, torch.device("cpu"), deadline=125.0, clock=clock,
                      callbacks=[Tick(), writer]).fit(tiny_mlp(), TRAIN, VAL)
    assert stopped.stop_reason is StopReason.TIME_BUDGET and stopped.step == 14 and stopped.epoch == 2
    records = [json.loads((p / "state.json").read_text()) for _, p in checkpoint_folders(tmp_path)]
    with_stop = [r for r in records if "stop" in r]
    assert with_stop and all(math.ceil(r["step"] / 10) == r["epoch"] for r in with_stop)
    first = read_checkpoint_at(tmp_path, with_stop[0]["sequence"])
    _, resumed = fit_from(first)
    assert without_times(resumed.history) == without_times(stopped.history)  # validation not skipped


def read_checkpoint_at(folder, sequence):
    for number, path in checkpoint_folders(folder):
        if number != sequence:
            shutil.rmtree(path)
    return read_checkpoint(folder)


def fit_from(checkpoint):
    model = tiny_mlp()
    return model, Trainer(FIT, OptimConfig(), AUGMENT, torch.device("cpu")).fit(model, TRAIN, VAL,
                                                                                  resume=checkpoint)


def test_checkpoint_writes_are_timed_and_reserved_by_the_budget(tmp_path):
    now = [0.0]

    def slow_disk(tmp):  # each write takes 3 s of the fake clock
        assert {p.name for p in tmp.iterdir()} == {"state.json", "tensors.safetensors"}
        now[0] += 3.0

    writer = CheckpointWriter(tmp_path, every_seconds=30.0, clock=lambda: now[0], before_rename=slow_disk)
    state = Trainer(FIT, OptimConfig(), AUGMENT, torch.device("cpu"), callbacks=[writer]).fit(tiny_mlp(), TRAIN, VAL)
    assert (state.checkpoint_seconds, state.checkpoint_share) == (3.0, 0.1)
    assert state.objects is None  # optimizer, average and callbacks freed when the fit ends

    def budget(write_seconds, share):
        state = TrainState(max_epochs=10, steps_per_epoch=10, deadline=100.0, clock=lambda: 0.0,
                           checkpoint_seconds=write_seconds, checkpoint_share=share)
        state.recent_steps.extend([1.0, 1.0])
        return state

    assert budget(3.0, 0.1).finish_seconds() == pytest.approx(0.5 + 3.0)  # the margin and the final write
    # 99.5 s of 1 s steps: 99; 96.5 s: the epoch's 10 steps of 1.1 s, then 6 epochs of 14 s (a 3 s
    # write, 10 steps), 1.5 s left: less than a write and a step
    assert (budget(0.0, 0.0).steps_left(), budget(3.0, 0.1).steps_left()) == (99, 70)


def test_older_checkpoints_are_removed_through_a_hidden_name_and_leftovers_swept(tmp_path):
    (tmp_path / ".old-ckpt-000001").mkdir(parents=True)  # a removal a kill cut short
    Trainer(FIT, OptimConfig(), AUGMENT, torch.device("cpu"), callbacks=[CheckpointWriter(tmp_path)]).fit(
        tiny_mlp(), TRAIN, VAL)
    # 4 epochs done: the position is the 5th epoch's start
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000004-epoch5-step40"]


def test_the_content_hash_reads_in_chunks_and_stays_the_same():
    data = make_blocks(n=50, size=8, task="colour", seed=0)
    whole = hashlib.sha256(data.x.contiguous().numpy().tobytes())
    whole.update(data.y.numpy().astype("<i8").tobytes())
    whole.update("\n".join(data.classes).encode())
    assert data.content_hash() == data.content_hash(chunk_bytes=1) == data.content_hash(chunk_bytes=1000)
    assert data.content_hash() == whole.hexdigest()
    view = data.subset(np.arange(49, -1, -1))  # rows in another order: another hash
    assert view.content_hash(chunk_bytes=1) == view.content_hash() != data.content_hash()


def test_an_unopenable_lock_file_is_one_error_line(tmp_path):
    partial = tmp_path / ".partial-x"
    partial.mkdir()
    (partial / "config.yaml").write_text("{}")
    (partial / ".lock").mkdir()  # open() fails (as on a read-only folder)
    with pytest.raises(NeuroclassError, match="cannot open its lock file"):
        RunFolder.reopen(partial)


def test_looking_for_an_interrupted_run_creates_no_lock_file(tmp_path):
    partial = tmp_path / ".partial-x"
    partial.mkdir()
    (partial / "config.yaml").write_text("{}")
    assert RunFolder._newest_interrupted(tmp_path) == partial
    assert not (partial / ".lock").exists()


def test_opening_a_finished_run_sweeps_what_a_cut_short_commit_left(tmp_path, trained_run):
    run = tmp_path / "run"
    shutil.copytree(trained_run.path, run)
    (run / "checkpoint" / "ckpt-000001").mkdir(parents=True)
    (run / ".lock").touch()
    RunFolder.open(run)
    assert not (run / "checkpoint").exists() and not (run / ".lock").exists()
    assert (run / "model.json").is_file()


def interrupted(cfg, step, clock=None):
    stop = StopRequest()
    extra = {"clock": clock} if clock else {}
    with pytest.raises(RunInterrupted) as caught:
        train(cfg, callbacks=[RequestAt(stop, step)], report=False, stop=stop, **extra)
    return caught.value.path


def test_quiet_applies_on_resume_from_the_api_and_from_the_record(tmp_path):
    partial = interrupted(quick_config(tmp_path / "a", **{"train.quiet": "false"}), 2)
    made = []
    result = api_train(resume=partial, quiet=True, report=False)
    assert RunFolder.open(result.path).config().train.quiet is True
    partial = interrupted(quick_config(tmp_path / "b"), 2)  # quick_config records train.quiet=true
    resume(partial, report=False, progress=lambda: made.append(1) or Progress(None))
    assert made == []


def test_a_stop_after_the_commit_names_the_finished_run_not_a_resume(tmp_path):
    line = _interrupted_line(RunInterrupted(tmp_path / "run", "stopped at once while writing the report",
                                            finished=True))
    assert "resume" not in line and f"the run had finished: {tmp_path / 'run'}" in line
    assert "resume with: neuroclass train --resume" in _interrupted_line(RunInterrupted(tmp_path, "x"))


def test_a_budgeted_run_records_the_budget_left_and_resumes_with_it(tmp_path):
    stop, left, ticks = StopRequest(), [], itertools.count(0.0, 0.01)
    clock = lambda: next(ticks)  # noqa: E731  (10 ms a reading)

    class BudgetLeft(Callback):
        def on_fit_start(self, state, model):
            left.append(state.deadline - state.clock())

    with pytest.raises(RunInterrupted) as caught:
        train(quick_config(tmp_path, **{"train.time_budget": 600}), callbacks=[BudgetLeft(), RequestAt(stop, 3)],
              report=False, stop=stop, clock=clock)
    saved = read_checkpoint(caught.value.path / "checkpoint").budget_left
    assert 0 < saved < left[0] < 600
    resume(caught.value.path, callbacks=[BudgetLeft()], report=False, clock=clock)
    assert 0 < left[1] < saved  # what was left, less the resumed run's own start


@pytest.mark.parametrize("settings, step", [
    ({"augment.enabled": "true", "augment.cutmix": 0.5}, 7),
    ({"augment.enabled": "true", "augment.mixup": 0.4}, 4),
    ({"train.ema": 0.9}, 8),
    ({"train.patience": 1, "train.epochs": 8, "optim.lr": 0.3}, 12),
])
def test_resumed_runs_end_bit_identical(tmp_path, settings, step):
    reference = train(quick_config(tmp_path / "a", **settings), report=False)
    result = resume(interrupted(quick_config(tmp_path / "b", **settings), step), report=False)
    assert same_weights(RunFolder(result.path).weights(), RunFolder(reference.path).weights())
    assert without_times(result.history) == without_times(reference.history)
    assert RunFolder(result.path).timing()["stop_reason"] == reference.timing["stop_reason"]


def test_fine_tuning_resumed_across_the_unfreeze_ends_bit_identical(tmp_path, trained_run):
    settings = {"model.from_run": str(trained_run.path), "train.head_epochs": 1}
    reference = train(quick_config(tmp_path / "a", model="auto", **settings), report=False)
    partial = interrupted(quick_config(tmp_path / "b", model="auto", **settings), 3)  # in the head-only epoch
    assert read_checkpoint(partial / "checkpoint").epoch == 0
    result = resume(partial, report=False)
    assert same_weights(RunFolder(result.path).weights(), RunFolder(reference.path).weights())
    assert without_times(result.history) == without_times(reference.history)
