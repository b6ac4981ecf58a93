"""The glass-box network's parameters as views of one buffer: each layer's arrays, the Params and a
torch view of the trained module share it; loading weights writes into it; a copy gets a buffer of
its own; an optimiser's update over the buffer gives the same numbers as parameter by parameter."""
import copy
import pickle

import numpy as np
import pytest
import torch

from neuroclass.glassbox import Network, fit, glassbox_options
from neuroclass.glassbox.layers import BatchNorm, Dense, Param
from neuroclass.glassbox.optimizers import make_optimizer
from neuroclass.runs.glassbox_module import GlassboxModule

RNG = np.random.default_rng(0)
X = RNG.random((48, 12), dtype=np.float32)
Y = (X[:, 0] * 3).astype(np.int64)  # three classes
OPTIONS = {"hidden": [8, 4], "batch_norm": True, "batch_size": 16}


def network(options: dict = OPTIONS, seed: int = 0) -> Network:
    return Network(glassbox_options(options), 12, 3, seed=seed)


def test_every_parameter_and_gradient_is_a_view_of_one_buffer():
    net = network()
    flat = net.params.flat
    assert [p.name for p in net.params] == [p.name for layer in net.layers for p in layer.params()]
    assert flat.value.size == flat.grad.size == sum(p.value.size for p in net.params)
    assert flat.value.dtype == flat.grad.dtype == np.float32
    for p in net.params:
        assert np.shares_memory(p.value, flat.value) and np.shares_memory(p.grad, flat.grad), p.name
        assert p.value.flags.c_contiguous and p.grad.shape == p.value.shape
    owners = {p.name: p for p in net.params}
    for layer in net.layers:
        if isinstance(layer, (Dense, BatchNorm)):  # the layer computes with the views themselves
            assert layer.weight is owners[f"{layer.name}.weight"].value
            assert layer.grad_bias is owners[f"{layer.name}.bias"].grad
    assert [p.penalised for p in net.params] == [True, False, False, False, True, False, False, False, True, False]


def test_training_moves_the_layers_and_a_torch_view_of_them():
    net = network()
    module = GlassboxModule(net)
    tensor = module.dense0.weight
    before = tensor.detach().clone()
    fit(net, X, Y, epochs=2, threads=1)
    assert not torch.equal(tensor, before)
    np.testing.assert_array_equal(tensor.numpy(), net.layers[0].weight)
    start = net.params.flat.value.ctypes.data
    assert start <= tensor.data_ptr() < start + net.params.flat.value.nbytes


def test_loading_weights_writes_into_the_buffer():
    net, other = network(seed=0), network(seed=1)
    fit(other, X, Y, epochs=1, threads=1)
    arrays = [p.value for p in net.params]
    net.load_state_dict(other.state_dict())
    assert all(a is p.value for a, p in zip(arrays, net.params))
    np.testing.assert_array_equal(net.params.flat.value, other.params.flat.value)
    again = network(seed=2)
    GlassboxModule(again).load_state_dict({k: torch.from_numpy(v) for k, v in other.state_dict().items()})
    np.testing.assert_array_equal(again.params.flat.value, other.params.flat.value)
    np.testing.assert_array_equal(again.predict_proba(X), other.predict_proba(X))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copy_keeps_its_parameters_in_a_buffer_of_its_own(how):
    net = network()
    fit(net, X, Y, epochs=1, threads=1)
    twin = copy.deepcopy(net) if how == "deepcopy" else pickle.loads(pickle.dumps(net))
    assert not np.shares_memory(twin.params.flat.value, net.params.flat.value)
    assert all(np.shares_memory(p.value, twin.params.flat.value) for p in twin.params)
    assert twin.layers[0].weight is twin.params[0].value
    before = net.state_dict()
    twin.train_step(X[:16], Y[:16])  # moves the copy's layers through its own buffer only
    assert not np.array_equal(twin.layers[0].weight, before["dense0.weight"])
    np.testing.assert_array_equal(twin.params[0].value, twin.layers[0].weight)
    assert all(np.array_equal(v, net.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_an_update_over_the_buffer_equals_one_parameter_at_a_time(name):
    net = network()
    net.params.flat.grad[:] = RNG.normal(size=net.params.flat.grad.size).astype(np.float32)
    separate = [Param(p.name, p.value.copy(), p.grad.copy(), p.penalised) for p in net.params]
    fused, one_by_one = make_optimizer(name, 0.05, 0.9, 0.01, 0.1), make_optimizer(name, 0.05, 0.9, 0.01, 0.1)
    for _ in range(3):
        fused.step(net.params)
        one_by_one.step(separate)
    for p, q in zip(net.params, separate):
        np.testing.assert_array_equal(p.value, q.value, err_msg=p.name)  # bit for bit
    assert not np.array_equal(separate[0].value, network().params[0].value)


def test_copied_parameters_are_laid_out_alike_and_independent():
    net = network()
    twin = net.params.copied()
    assert [p.name for p in twin] == [p.name for p in net.params]
    assert not np.shares_memory(twin.flat.value, net.params.flat.value)
    assert all(np.shares_memory(p.value, twin.flat.value) for p in twin)
    twin[0].value += 1
    assert not np.array_equal(twin[0].value, net.params[0].value)
    np.testing.assert_array_equal(twin.flat.value[:twin[0].value.size], twin[0].value.ravel())
