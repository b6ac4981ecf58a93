import math
import time

import pytest
import torch

from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig
from neuroclass.data.blocks import make_blocks
from neuroclass.errors import NeuroclassError
from neuroclass.models import create
from neuroclass.training.callbacks import should_stop_early
from neuroclass.training.optim import lr_factor, make_optimizer
from neuroclass.inference import predict_logits
from neuroclass.training.trainer import Trainer


def mlp_for(ds, hidden=(32,)):
    mean, std = torch.zeros(1, ds.x.shape[1], 1, 1), torch.ones(1, ds.x.shape[1], 1, 1)
    return create(ModelConfig(name="mlp", options={"hidden": list(hidden)}), ds.input_shape,
                  len(ds.classes), mean, std)


def fit(ds, val=None, deadline=None, **train):
    train.setdefault("quiet", True)
    optim = train.pop("optim", OptimConfig())
    torch.manual_seed(train.get("seed", 0))
    model = mlp_for(ds)
    trainer = Trainer(TrainConfig(**train), optim, AugmentConfig(), torch.device("cpu"), deadline=deadline)
    return model, trainer.fit(model, ds, val)


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
    assert state.stop_reason.startswith("early stopping")
    assert len(state.history) < 40
    best = min(range(len(state.history)), key=lambda i: state.history[i]["val_loss"])
    assert state.best_epoch == best + 1
    val_loss = torch.nn.functional.cross_entropy(predict_logits(model, val.x, torch.device("cpu")), val.y)
    assert float(val_loss) == pytest.approx(state.history[best]["val_loss"], rel=1e-5)


def test_time_budget_is_respected():
    ds = make_blocks(n=2000, size=16)
    # a fresh process's first optimizer imports torch._dynamo (1-5 s): not what this test times
    torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())
    start = time.perf_counter()
    _, state = fit(ds, deadline=start + 1.0, batch_size=16)  # no epoch count: the clock decides
    elapsed = time.perf_counter() - start
    assert state.stop_reason == "time budget reached"
    assert elapsed < 1.0 + 0.5


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

    state = TrainState(max_epochs=1, steps_per_epoch=10, reserve_examples=1000)
    state.step, state.samples_seen, state.train_seconds = 1, 10, 5.0  # first step: one-off costs
    state.first_step_seconds, state.first_step_samples = 5.0, 10
    assert state.finish_seconds() == 0.0  # no steady step measured yet: nothing to extrapolate
    state.step, state.samples_seen, state.train_seconds = 3, 30, 5.2  # two steady steps, 0.1 s each
    assert state.finish_seconds() == pytest.approx(1000 * (0.2 / 20) / 3)
