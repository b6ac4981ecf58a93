"""Each glass-box optimiser against torch.optim, step by step on the same parameters and gradients,
with the L1 and L2 penalties: L2 as torch's weight_decay on the weights only, L1 as l1 * sum|W|
added to the loss that torch differentiates."""
import numpy as np
import pytest
import torch

from neuroclass.glassbox.layers import Param
from neuroclass.glassbox.optimizers import SGD, Adam, RMSProp, make_optimizer

STEPS = 5
LR = 0.05


def make_torch(name: str, groups: list[dict]) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(groups, lr=LR)
    if name == "momentum":
        return torch.optim.SGD(groups, lr=LR, momentum=0.9)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=LR, alpha=0.9, eps=1e-8)  # Hinton's rho = 0.9
    return torch.optim.Adam(groups, lr=LR, betas=(0.9, 0.999), eps=1e-8)


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (0.01, 0.0), (0.0, 0.1), (0.01, 0.1)])
def test_optimizer_steps_match_torch(name, l1, l2):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(4, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    ours = [Param("w", weight.copy(), np.zeros_like(weight), True),
            Param("b", bias.copy(), np.zeros_like(bias), False)]
    optimizer = make_optimizer(name, LR, 0.9, l1, l2)

    wt, bt = torch.tensor(weight, requires_grad=True), torch.tensor(bias, requires_grad=True)
    reference = make_torch(name, [{"params": [wt], "weight_decay": l2}, {"params": [bt], "weight_decay": 0.0}])
    for _ in range(STEPS):
        gw, gb = rng.normal(size=weight.shape).astype(np.float32), rng.normal(size=bias.shape).astype(np.float32)
        ours[0].grad[:], ours[1].grad[:] = gw, gb
        optimizer.step(ours)

        reference.zero_grad()
        # the data loss's gradients are gw and gb; the L1 penalty is differentiated by torch
        loss = (wt * torch.tensor(gw)).sum() + (bt * torch.tensor(gb)).sum() + l1 * wt.abs().sum()
        loss.backward()
        reference.step()
        np.testing.assert_allclose(ours[0].value, wt.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours[1].value, bt.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert ours[0].value.dtype == ours[1].value.dtype == np.float32
    assert not np.allclose(ours[0].value, weight)  # it moved


def test_make_optimizer_picks_the_class_and_its_momentum():
    plain = make_optimizer("sgd", 0.1, 0.9, 0, 0)
    assert isinstance(plain, SGD) and plain.momentum == 0
    assert make_optimizer("momentum", 0.1, 0.8, 0, 0).momentum == 0.8
    assert isinstance(make_optimizer("rmsprop", 0.1, 0.9, 0, 0), RMSProp)
    assert isinstance(make_optimizer("adam", 0.1, 0.9, 0, 0), Adam)


def test_adam_state_stays_float32():
    p = Param("w", np.ones(3, np.float32), np.full(3, 0.5, np.float32), True)
    adam = Adam(1e-3, l1=0.1, l2=0.1)
    for _ in range(3):
        adam.step([p])
    assert {a.dtype for a in (p.value, p.grad, adam.m["w"], adam.v["w"])} == {np.dtype(np.float32)}


@pytest.mark.parametrize("name, store, first", [("momentum", "velocity", 1e-30), ("rmsprop", "square", 1e-15),
                                               ("adam", "m", 1e-30)])
def test_running_averages_that_decay_reach_zero_not_subnormal_numbers(name, store, first):
    # a gradient that stops: its running average shrinks by a fixed factor per step, into float32's
    # subnormal numbers (below 1.2e-38, slow to compute with) unless the optimiser flushes them
    p = Param("w", np.ones(2, np.float32), np.array([first, 0.5], np.float32), True)
    optimizer = make_optimizer(name, LR, 0.9, 0.0, 0.0)
    optimizer.step([p])
    p.grad[:] = 0
    for _ in range(255):  # 256 steps in all, a multiple of FLUSH_EVERY
        optimizer.step([p])
    average = getattr(optimizer, store)["w"]
    assert average[0] == 0  # without the flush: about 1e-43, a subnormal number
    assert abs(average[1]) >= np.finfo(np.float32).tiny  # a normal small number stays as it is
