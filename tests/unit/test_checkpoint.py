"""Checkpoints: the round trip of every state, damaged files, the writer's timing, resume in process."""
from __future__ import annotations

import json
import logging
import random
import signal
import warnings

import numpy as np
import pytest
import torch

from neuroclass.api import train as api_train
from neuroclass.cli import main
from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig
from neuroclass.data.blocks import make_blocks
from neuroclass.errors import NeuroclassError
from neuroclass.interrupts import stop_on_signals
from neuroclass.io import write_folder_atomic
from neuroclass.models import create
from neuroclass.pipeline import RunInterrupted, prepare, resume, train
from neuroclass.runs import RunFolder
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.checkpoint import capture, checkpoint_folders, pack, read_checkpoint, write_checkpoint
from neuroclass.training.checkpoint_writer import CheckpointWriter
from neuroclass.training.ema import WeightAverage
from neuroclass.training.optim import make_optimizer
from neuroclass.training.state import FitObjects, StopReason, TrainState
from neuroclass.training.trainer import Trainer
from conftest import quick_config

DATA = make_blocks(n=200, size=16, task="colour", seed=0)
TRAIN, VAL = DATA.subset(np.arange(160)), DATA.subset(np.arange(160, 200))
# 10 steps an epoch; dropout, weight average, mixup and cutout: every generator a step draws from
FIT = TrainConfig(epochs=4, batch_size=16, patience=3)
AUGMENT = AugmentConfig(enabled=True, mixup=0.2, erase=0.3)


def tiny_mlp(seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(name="mlp", options={"hidden": [16], "dropout": 0.3})
    return create(cfg, DATA.input_shape, len(DATA.classes), torch.zeros(3, 1, 1), torch.ones(3, 1, 1))


def tiny_cnn(seed=0):
    """A BatchNorm CNN, trained in channels_last layout (its optimizer moments too)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(name="cnn", options={"channels": [4, 8], "convs_per_stage": 1, "hidden": 16})
    return create(cfg, DATA.input_shape, len(DATA.classes), torch.zeros(3, 1, 1), torch.ones(3, 1, 1))


class RequestAt(Callback):
    """Requests ``stop`` once the fit has done ``step`` steps (as a signal handler would)."""

    def __init__(self, stop: StopRequest, step: int) -> None:
        self.stop, self.step = stop, step

    def on_batch_end(self, state, model):
        if state.step == self.step:
            self.stop.request("test stop")


def fit(callbacks, resume=None, make=tiny_mlp):
    model = make()
    state = Trainer(FIT, OptimConfig(), AUGMENT, torch.device("cpu"), callbacks=callbacks).fit(
        model, TRAIN, VAL, resume=resume)
    return model, state


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time"} for row in history]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uninterrupted():
    return fit([])


@pytest.mark.parametrize("stop_at", [1, 7, 10, 23, 40])  # mid-epoch, an epoch's last step, the last
def test_a_fit_stopped_at_any_step_resumes_to_the_same_weights_and_history(tmp_path, uninterrupted, stop_at):
    stop = StopRequest()
    _, stopped = fit([RequestAt(stop, stop_at), stop, CheckpointWriter(tmp_path)])
    assert stopped.stop_reason is StopReason.INTERRUPTED and stopped.step == stop_at
    checkpoint = read_checkpoint(tmp_path)
    assert (checkpoint.step, checkpoint.epoch) == (stop_at, (stop_at - 1) // 10)
    model, state = fit([StopRequest(), CheckpointWriter(tmp_path)], resume=checkpoint)
    reference, reference_state = uninterrupted
    assert same_weights(model.state_dict(), reference.state_dict())
    assert without_times(state.history) == without_times(reference_state.history) and state.step == 40
    assert state.stop_reason is StopReason.COMPLETED


def test_a_channels_last_cnn_resumes_to_the_same_weights(tmp_path):
    stop = StopRequest()
    fit([RequestAt(stop, 13), stop, CheckpointWriter(tmp_path)], make=tiny_cnn)
    model, _ = fit([CheckpointWriter(tmp_path)], resume=read_checkpoint(tmp_path), make=tiny_cnn)
    reference, _ = fit([], make=tiny_cnn)
    assert same_weights(model.state_dict(), reference.state_dict())


def manual_fit(seed=0):
    """The objects of a fit after three optimizer steps, without a Trainer."""
    model = tiny_mlp(seed)
    optimizer = make_optimizer(model, OptimConfig())
    average = WeightAverage(model, 0.9)
    generator = torch.Generator().manual_seed(seed)
    state = TrainState(max_epochs=2, steps_per_epoch=5, deadline=1000.0, clock=lambda: 10.0 * (seed + 1))
    state.objects = FitObjects(model, optimizer, average, generator, [])
    for _ in range(3):
        loss = model(torch.rand(4, *DATA.input_shape, generator=generator)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        average.update(model)
        state.record_step(0.5 + seed, 4)
    state.epoch_order, state.epoch_loss_sum, state.epoch_correct, state.epoch_seen = torch.randperm(20), 1.5, 3, 12
    state.history = [{"epoch": 1, "loss": 0.25, "val_loss": None}]
    return state


def draws(generator):
    return (torch.rand(3).tolist(), torch.rand(3, generator=generator).tolist(), np.random.rand(3).tolist(),
            [random.random() for _ in range(3)])


def test_a_checkpoint_restores_every_state(tmp_path):
    saved = manual_fit(seed=0)
    tensors, record = capture(saved)
    write_checkpoint(tmp_path, 1, tensors, record)
    expected = draws(saved.objects.generator)  # what every generator draws next

    restored = manual_fit(seed=1)  # other weights, moments, counters and generator states
    read_checkpoint(tmp_path).restore(restored)
    a, b = saved.objects, restored.objects
    assert same_weights(a.model.state_dict(), b.model.state_dict())
    assert same_weights(a.average.module.state_dict(), b.average.module.state_dict())
    assert b.average.updates == a.average.updates == 3
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        sa, sb = a.optimizer.state[pa], b.optimizer.state[pb]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert draws(b.generator) == expected
    for name in ("step", "epoch", "samples_seen", "train_seconds", "first_step_seconds", "history",
                 "epoch_loss_sum", "epoch_correct", "epoch_seen", "eval_pass_costs"):
        assert getattr(restored, name) == getattr(saved, name), name
    assert list(restored.recent_steps) == list(saved.recent_steps) == [0.5, 0.5]
    assert torch.equal(restored.epoch_order, saved.epoch_order)
    # the budget clock: time spent so far and the budget left carry over to the new clock
    assert restored.elapsed == pytest.approx(0.0) and read_checkpoint(tmp_path).budget_left == 990.0


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_with_a_warning(tmp_path):
    state = manual_fit()
    for sequence in (1, 2, 3):
        state.step = sequence
        write_checkpoint(tmp_path, sequence, *capture(state), keep=3)
    assert [n for n, _ in checkpoint_folders(tmp_path)] == [1, 2, 3]
    blob = bytearray((tmp_path / "ckpt-000003-epoch1-step3" / "tensors.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (tmp_path / "ckpt-000003-epoch1-step3" / "tensors.safetensors").write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="ckpt-000003-epoch1-step3: damaged checkpoint .*checksum"):
        assert read_checkpoint(tmp_path).step == 2
    (tmp_path / "ckpt-000002-epoch1-step2" / "state.json").write_text('{"format": "neuroclass-check')  # cut short
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_checkpoint(tmp_path).step == 1
    assert ["ckpt-000003-epoch1-step3: damaged" in str(w.message) for w in caught] == [True, False]
    assert "ckpt-000002-epoch1-step2: damaged checkpoint (unreadable" in str(caught[1].message)
    (tmp_path / "ckpt-000001-epoch1-step1" / "tensors.safetensors").unlink()
    with warnings.catch_warnings(record=True), pytest.raises(NeuroclassError, match="no usable checkpoint"):
        warnings.simplefilter("always")
        read_checkpoint(tmp_path)


def test_a_new_checkpoint_replaces_the_old_only_once_complete(tmp_path):
    state = manual_fit()
    write_checkpoint(tmp_path, 1, *capture(state))
    with pytest.raises(RuntimeError, match="cut"):
        def cut(tmp):
            raise RuntimeError("cut before the rename")
        write_folder_atomic(tmp_path / "ckpt-000002", {"state.json": b"{}"}, before_rename=cut)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000001-epoch1-step3"]  # no temporary folder either
    write_checkpoint(tmp_path, 2, *capture(state))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000002-epoch1-step3"]
    assert read_checkpoint(tmp_path) is not None and read_checkpoint(tmp_path / "none") is None


def test_checkpoints_hold_no_pickle_and_keys_must_be_text(tmp_path):
    write_checkpoint(tmp_path, 1, *capture(manual_fit()))
    record = json.loads((tmp_path / "ckpt-000001-epoch1-step3" / "state.json").read_text())
    name = next(iter(manual_fit().objects.model.state_dict()))
    assert record["model"][name] == {"__tensor__": f"model/{name}"}
    with pytest.raises(TypeError, match="keys must be strings"):
        pack({1: torch.ones(1)}, "x", {})
    with pytest.raises(TypeError, match="Got object"):
        pack(object(), "x", {})


def test_the_writer_saves_every_few_minutes_of_its_clock_inside_an_epoch(tmp_path):
    now = [0.0]

    class Tick(Callback):  # each step takes 10 s of the fake clock
        def on_batch_end(self, state, model):
            now[0] += 10.0

    writer = CheckpointWriter(tmp_path, every_seconds=25.0, clock=lambda: now[0], keep=100)
    fit([Tick(), writer])
    steps = [json.loads((p / "state.json").read_text())["step"] for _, p in checkpoint_folders(tmp_path)]
    # every third step (30 s >= 25 s), and after every epoch's validation (steps 10, 20, 30, 40)
    assert steps == [3, 6, 9, 10, 13, 16, 19, 20, 23, 26, 29, 30, 33, 36, 39, 40]
    none = CheckpointWriter(tmp_path / "epochs", every_seconds=0.0, clock=lambda: now[0], keep=100)
    fit([Tick(), none])
    assert [n for n, _ in checkpoint_folders(tmp_path / "epochs")] == [1, 2, 3, 4]


def test_an_interrupted_run_keeps_its_folder_and_resumes_to_the_same_model(tmp_path):
    reference = train(quick_config(tmp_path / "a"), report=False)
    stop = StopRequest()
    with pytest.raises(RunInterrupted) as caught:
        train(quick_config(tmp_path / "b"), callbacks=[RequestAt(stop, 9)], report=False, stop=stop)
    partial = caught.value.path
    assert partial.name.startswith(".partial-") and (partial / "config.yaml").is_file()
    # requested after step 9 by a callback after the StopRequest: seen at the end of step 10, the
    # last of epoch 2 (5 steps an epoch)
    assert "test stop at epoch 2, step 10" in str(caught.value)
    # one convention: the epoch in progress (1-based) and the steps done, in the line, the
    # checkpoint's name and the resume's record
    assert [p.name for _, p in checkpoint_folders(partial / "checkpoint")] == ["ckpt-000002-epoch2-step10"]
    assert RunFolder(partial).config() == quick_config(tmp_path / "b")
    result = api_train(resume=tmp_path / "b" / "runs", report=False)  # the folder of runs: its newest
    assert result.path == partial.parent / partial.name[len(".partial-"):]
    assert same_weights(RunFolder(result.path).weights(), RunFolder(reference.path).weights())
    assert without_times(result.history) == without_times(reference.history)
    resumed = RunFolder(result.path).timing()["resumed"]
    assert [(r["epoch"], r["step"]) for r in resumed] == [(2, 10)] and resumed[0]["at"].startswith("20")
    assert not (result.path / "checkpoint").exists() and not (result.path / ".lock").exists()
    assert not partial.exists()


def test_resume_refuses_data_that_changed_since_the_run_started(tmp_path, caplog):
    data = tmp_path / "blocks.npz"
    blocks = make_blocks(n=240, size=16, task="colour", seed=0)
    np.savez(data, x=blocks.x.numpy(), y=blocks.y.numpy())
    stop = StopRequest()
    with pytest.raises(RunInterrupted) as caught:
        train(quick_config(tmp_path, source=str(data)), callbacks=[RequestAt(stop, 2)], report=False, stop=stop)
    np.savez(data, x=blocks.x.numpy()[::-1].copy(), y=blocks.y.numpy()[::-1].copy())
    caplog.set_level(logging.INFO, logger="neuroclass")
    with pytest.raises(NeuroclassError, match="the data changed since run .* started .* put the data back"):
        resume(caught.value.path, report=False, quiet=False)
    assert not [r for r in caplog.records if "resuming" in r.getMessage()]  # no "resuming" before the refusal
    np.savez(data, x=blocks.x.numpy(), y=blocks.y.numpy())
    assert resume(caught.value.path, report=False).path.is_dir()  # the partial folder was kept


def test_resume_refuses_finished_missing_and_busy_runs(tmp_path, trained_run):
    with pytest.raises(NeuroclassError, match="this run finished"):
        resume(trained_run.path)
    with pytest.raises(NeuroclassError, match="no such folder"):
        resume(tmp_path / "nope")
    with pytest.raises(NeuroclassError, match="no interrupted run in this folder"):
        resume(tmp_path)
    busy = RunFolder.create(tmp_path / "runs", "busy")  # this process holds its lock
    busy.write_config(quick_config(tmp_path))
    with pytest.raises(NeuroclassError, match="another process is training this run"):
        resume(busy.path)
    with pytest.raises(NeuroclassError, match=r"\.partial-busy: another process is training it"):
        resume(tmp_path / "runs")  # the only partial run is busy: named, not "no interrupted run"
    with pytest.raises(NeuroclassError, match="drop data, epochs"):
        api_train("digits", epochs=3, resume=tmp_path)
    busy.discard()


def test_a_resumed_run_gets_the_budget_that_was_left(tmp_path):
    cfg = quick_config(tmp_path, **{"train.time_budget": 600})
    now = [100.0]
    prep = prepare(cfg, clock=lambda: now[0], budget=42.5, plan={"model_size": None, "auto_augment": None})
    assert prep.deadline == pytest.approx(142.5) and prep.plan == {"model_size": None, "auto_augment": None}
    assert prepare(cfg, clock=lambda: now[0]).deadline == pytest.approx(700.0)


def test_resume_takes_no_option_that_sets_up_a_run(capsys):
    assert main(["train", "digits", "--resume", "runs"]) == 2
    assert "--resume continues the run with its recorded config; drop DATA" in capsys.readouterr().err
    assert main(["train", "--resume", "runs", "--epochs", "3", "--set", "optim.lr=1"]) == 2
    assert "drop --epochs, --set" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "train needs DATA" in capsys.readouterr().err


def test_the_cli_signal_handlers_request_a_stop_then_stop_at_once_and_are_put_back(capfd):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_on_signals() as interrupts:
        signal.raise_signal(signal.SIGTERM)
        assert interrupts.stop.requested and interrupts.received == [signal.SIGTERM]
        # the first signal says at once what happens (here: before training started)
        assert capfd.readouterr().err == ("neuroclass: SIGTERM received: stopping after the first training "
                                          "step, keeping a checkpoint\n")
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert interrupts.exit_code() == 143
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.parametrize("phase, words", [("training", "stopping after the current step; press Ctrl-C"),
                                          ("after", "training is over: finishing the run")])
def test_the_first_signal_says_what_happens_in_each_phase(capfd, phase, words):
    with stop_on_signals() as interrupts:
        interrupts.phase.now = phase
        signal.raise_signal(signal.SIGINT)
    assert capfd.readouterr().err.startswith(f"neuroclass: SIGINT received: {words}")
