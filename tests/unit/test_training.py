import io
import math
import re

import pytest
import torch
from torch import nn

from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig
from neuroclass.data.blocks import make_blocks
from neuroclass.errors import NeuroclassError
from neuroclass.models import create
from neuroclass.training.callbacks import Callback, Progress, should_stop_early
from neuroclass.training.optim import lr_factor, make_optimizer
from neuroclass.inference import predict_logits
from neuroclass.training.state import ANNEAL_STEPS, StopReason
from neuroclass.training.trainer import Trainer


def mlp_for(ds, hidden=(32,)):
    mean, std = torch.zeros(1, ds.x.shape[1], 1, 1), torch.ones(1, ds.x.shape[1], 1, 1)
    return create(ModelConfig(name="mlp", options={"hidden": list(hidden)}), ds.input_shape,
                  len(ds.classes), mean, std)


def fit(ds, val=None, deadline=None, clock=None, reserve_examples=0, callbacks=None, **train):
    optim = train.pop("optim", OptimConfig())
    torch.manual_seed(train.get("seed", 0))
    model = mlp_for(ds)
    timing = {"clock": clock} if clock else {}
    if clock:
        model = Timed(model, clock)
    trainer = Trainer(TrainConfig(**train), optim, AugmentConfig(), torch.device("cpu"), deadline=deadline,
                      reserve_examples=reserve_examples, callbacks=callbacks, **timing)
    return model, trainer.fit(model, ds, val)


class FakeClock:
    """Seconds that pass only when the model computes (see Timed): ``step(n)`` for the n-th
    training forward (from 1), ``per_example`` per example evaluated, and ``first_eval`` more on the
    first evaluation call (a first pass's one-off costs)."""

    def __init__(self, step, per_example: float, first_eval: float = 0.0) -> None:
        self.step = step if callable(step) else (lambda n: step)
        self.per_example, self.first_eval = per_example, first_eval
        self.now, self.steps, self.evaluated = 0.0, 0, 0

    def __call__(self) -> float:
        return self.now

    def __deepcopy__(self, memo):  # the averaged weights' copy of the model shares the clock
        return self

    def evaluate(self, examples: int) -> None:
        self.now += examples * self.per_example + (self.first_eval if not self.evaluated else 0.0)
        self.evaluated += examples


class Timed(nn.Module):
    """A model whose forward passes advance a FakeClock: a training step's worth in train mode,
    per example in eval mode."""

    def __init__(self, model: nn.Module, clock: FakeClock) -> None:
        super().__init__()
        self.model, self.clock = model, clock

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.clock.steps += 1
            self.clock.now += self.clock.step(self.clock.steps)
        else:
            self.clock.evaluate(len(x))
        return self.model(x)


def test_training_learns_the_blocks_task():
    train, val = make_blocks(n=320, seed=0), make_blocks(n=160, seed=1)
    model, state = fit(train, val, epochs=8, batch_size=32)
    acc = (predict_logits(model, val.x, torch.device("cpu")).argmax(1) == val.y).float().mean()
    assert acc > 0.9
    assert state.history[-1]["loss"] < state.history[0]["loss"]
    assert [row["epoch"] for row in state.history] == list(range(1, 9))


def test_same_seed_gives_identical_history():
    ds = make_blocks(n=128)
    _, a = fit(ds, epochs=2, batch_size=32, seed=3)
    _, b = fit(ds, epochs=2, batch_size=32, seed=3)
    _, c = fit(ds, epochs=2, batch_size=32, seed=4)
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    assert [r["loss"] for r in a.history] != [r["loss"] for r in c.history]


def test_early_stopping_decision():
    assert not should_stop_early([1.0, 0.9, 0.8], patience=2)
    assert should_stop_early([1.0, 0.8, 0.85, 0.9], patience=2)
    assert not should_stop_early([1.0, 0.8, 0.85, 0.7], patience=2)
    assert not should_stop_early([1.0, 1.1, 1.2], patience=0)


def test_early_stopping_stops_and_restores_best_weights():
    train, val = make_blocks(n=64, seed=0), make_blocks(n=64, seed=5, noise=120)
    # a high constant learning rate on tiny data overfits fast: validation loss turns up
    optim = OptimConfig(lr=0.05, schedule="constant")
    model, state = fit(train, val, epochs=40, batch_size=16, patience=2, optim=optim)
    assert state.stop_reason is StopReason.EARLY_STOPPING and "no validation loss improvement" in state.stop_detail
    assert len(state.history) < 40
    best = min(range(len(state.history)), key=lambda i: state.history[i]["val_loss"])
    assert state.best_epoch == best + 1
    val_loss = torch.nn.functional.cross_entropy(predict_logits(model, val.x, torch.device("cpu")), val.y)
    assert float(val_loss) == pytest.approx(state.history[best]["val_loss"], rel=1e-5)


def test_time_budget_stops_before_the_step_that_would_end_past_the_deadline():
    ds = make_blocks(n=320)
    clock = FakeClock(step=0.1, per_example=0.0)
    _, state = fit(ds, deadline=10.0, clock=clock, batch_size=32)  # no epoch count: the clock decides
    assert state.stop_reason is StopReason.TIME_BUDGET and "time budget" in state.stop_detail
    margin = 0.005 * 10.0  # FINISH_MARGIN of the budget
    assert 10.0 - margin - 0.1 <= clock.now <= 10.0 - margin  # no room left for another step
    assert state.step == clock.steps and state.epoch == math.ceil(state.step / 10)


def budget_fit(clock: FakeClock, schedule: str, reserve: int, deadline: float = 10.0):
    """A budgeted fit of 10 steps an epoch, validated on 300 examples (two evaluation batches)."""
    train, val = make_blocks(n=320, size=8, seed=0), make_blocks(n=300, size=8, seed=1)
    optim = OptimConfig(schedule=schedule, lr=0.004)
    _, state = fit(train, val, deadline=deadline, clock=clock, reserve_examples=reserve, batch_size=32,
                   optim=optim)
    assert state.stop_reason is StopReason.TIME_BUDGET
    assert state.lr < 0.2 * optim.lr and state.history[-1]["lr"] == state.lr  # annealed at the stop
    return state


@pytest.mark.parametrize("schedule, clock", [
    ("onecycle", FakeClock(step=0.1, per_example=0.002)),
    ("cosine", FakeClock(step=0.1, per_example=0.002)),
    # the first validation pass's one-off costs (a third of the budget) land on its first batch
    ("onecycle", FakeClock(step=0.1, per_example=0.002, first_eval=3.0)),
    # one step slowed 20x by another process: the median step time does not move
    ("cosine", FakeClock(step=lambda n: 2.0 if n == 25 else 0.1, per_example=0.002)),
], ids=["steady-onecycle", "steady-cosine", "slow-first-validation", "one-slow-step"])
def test_a_budget_stop_uses_the_budget_and_ends_in_time_with_the_rate_annealed(schedule, clock):
    budget_fit(clock, schedule, reserve=640)
    clock.evaluate(640)  # the caller's evaluation after fit
    assert clock.now <= 10.0
    # and no room was left for one more step (with the validation pass that may come before it)
    margin, validation = 0.005 * 10.0, 300 * clock.per_example
    assert clock.now >= 10.0 - margin - 0.1 - validation


@pytest.mark.parametrize("schedule, clock, reserve, deadline, moved_at", [
    # validation costs 5x what the steps suggested: at the first pass (after 10 steps) the end of
    # training moves to a time already past
    ("onecycle", FakeClock(step=0.1, per_example=0.005), 1300, 10.0, 10),
    # the measured cause: the reserve for the evaluation after training, unknown until a second
    # step was timed, then needed more than the time left (on 2 busy CPU cores, 3.3 s of 0.9 s)
    ("onecycle", FakeClock(step=0.25, per_example=0.004), 2240, 1.6, 2),
    ("cosine", FakeClock(step=0.25, per_example=0.004), 2240, 1.6, 2),
], ids=["dear-validation", "reserve-past-the-deadline-onecycle", "reserve-past-the-deadline-cosine"])
def test_an_end_moved_into_the_past_still_gets_the_rate_annealed(schedule, clock, reserve, deadline, moved_at):
    state = budget_fit(clock, schedule, reserve, deadline)
    assert state.step == moved_at + ANNEAL_STEPS  # the overrun: those steps, no more


def test_nan_loss_is_reported_as_divergence():
    ds = make_blocks(n=64)
    optim = OptimConfig(name="sgd", lr=1e12, schedule="constant", momentum=0.0)
    with pytest.raises(NeuroclassError, match="training diverged.*lower optim.lr"):
        fit(ds, epochs=5, batch_size=16, optim=optim)


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "onecycle"])
def test_schedules_start_and_end_sensibly(schedule):
    cfg = OptimConfig(schedule=schedule, warmup=0.1)
    values = [lr_factor(cfg, p / 100) for p in range(101)]
    assert all(0 <= v <= 1.0 for v in values)
    if schedule in ("cosine", "onecycle"):
        assert values[0] < 0.1 and max(values) == pytest.approx(1.0, abs=1e-3) and values[-1] < 0.01
    if schedule == "step":
        assert values[-1] < values[0]


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_optimizers_exclude_biases_from_weight_decay(name):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt = make_optimizer(model, OptimConfig(name=name, weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])


def test_vit_position_embedding_and_class_token_get_no_weight_decay():
    model = create(ModelConfig(name="vit"), (1, 28, 28), 10, torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    decay, no_decay = make_optimizer(model, OptimConfig(weight_decay=0.1)).param_groups
    exempt = {id(model.net.pos_embed), id(model.net.cls_token)}
    assert exempt <= {id(p) for p in no_decay["params"]}
    assert not exempt & {id(p) for p in decay["params"]}
    assert any(p.ndim >= 2 for p in decay["params"])  # attention and MLP weights still decay


def test_l1_penalty_shrinks_weights():
    ds = make_blocks(n=128)
    plain, _ = fit(ds, epochs=3, batch_size=32, optim=OptimConfig(weight_decay=0.0))
    sparse, _ = fit(ds, epochs=3, batch_size=32, optim=OptimConfig(weight_decay=0.0, l1=1e-3))
    first = lambda m: m.net.layers[1].weight.abs().mean()  # noqa: E731
    assert first(sparse) < first(plain)
    assert math.isfinite(float(first(sparse).detach()))


def test_budget_reserve_leaves_out_the_slow_first_step():
    from neuroclass.training.state import TrainState

    state = TrainState(max_epochs=1, steps_per_epoch=10, reserve_examples=1000, clock=lambda: 0.0)
    state.record_step(5.0, 10)  # the first step: one-off costs
    assert state.finish_seconds() == 0.0  # no steady step measured yet: nothing to extrapolate
    state.record_step(0.1, 10)
    state.record_step(0.1, 10)  # two steady steps, 0.1 s each
    assert state.finish_seconds() == pytest.approx(1000 * (0.1 / 10) / 3)


def test_without_a_budget_the_schedule_ends_on_the_last_planned_step():
    seen = []

    class Rates(Callback):
        def on_batch_end(self, state, model):
            seen.append(state.lr)

    ds = make_blocks(n=128)
    _, state = fit(ds, epochs=2, batch_size=32, callbacks=[Rates()], optim=OptimConfig(lr=0.004, warmup=0.5))
    assert state.stop_reason is StopReason.COMPLETED and state.stop_detail == "ran all 2 planned epochs"
    assert len(seen) == 8 and seen[-1] == pytest.approx(0.004 * 1e-3)  # onecycle's floor at progress 1
    assert seen[0] < seen[2]  # warm-up


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_trainer_prints_nothing_and_progress_writes_an_epoch_line_off_a_terminal(capsys):
    stream = io.StringIO()  # a log file, a pipe: no bar
    fit(make_blocks(n=64), epochs=2, batch_size=16, callbacks=[Progress(stream)])
    assert capsys.readouterr() == ("", "")  # no display but the one the caller adds
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2: loss ") and lines[1].endswith("s")


def test_progress_on_a_terminal_shows_steps_of_the_plan_rate_and_time_left():
    stream = Terminal()
    fit(make_blocks(n=64), epochs=2, batch_size=16, callbacks=[Progress(stream)])
    text = stream.getvalue()
    assert "epoch 1: loss " in text and "epoch 2: loss " in text
    # steps done of the 8 planned, [elapsed<left, rate]
    assert re.search(r"\d/8 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+step/s, acc=", text), text
