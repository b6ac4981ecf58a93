"""Every glass-box layer's and loss's backward pass against a numerical gradient (central
differences on float64 copies) and against torch autograd (float32); batch normalisation in
training and evaluation mode; dropout with the mask it drew; a whole network's gradients against
the same network in torch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroclass.glassbox import Network, glassbox_options
from neuroclass.glassbox.layers import BatchNorm, Dense, Dropout, ReLU, Sigmoid, Softmax, Tanh
from neuroclass.glassbox.losses import SoftmaxCrossEntropy, SquaredError

B, D_IN, D_OUT = 4, 5, 3


def numeric_grad(f, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d array by central differences, changing ``array`` in place (float64)."""
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        keep = array[i]
        array[i] = keep + eps
        up = f()
        array[i] = keep - eps
        down = f()
        array[i] = keep
        grad[i] = (up - down) / (2 * eps)
    return grad


def as_float64(layer, names):
    """The layer's arrays ``names`` (and their grad_ twins) as float64, for the finite differences."""
    for name in names:
        setattr(layer, name, getattr(layer, name).astype(np.float64))
        setattr(layer, f"grad_{name}", np.zeros_like(getattr(layer, name)))
    return layer


def inputs64(seed: int = 0, shape=(B, D_IN)) -> np.ndarray:
    # away from 0, where ReLU has no derivative
    x = np.random.default_rng(seed).normal(size=shape)
    return np.where(np.abs(x) < 0.05, 0.3, x)


def upstream(shape, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


# ----------------------------------------------------------------------------- numerical gradients

def test_dense_backward_matches_numerical_gradient():
    rng = np.random.default_rng(0)
    layer = as_float64(Dense("d", rng.normal(size=(D_IN, D_OUT)).astype(np.float32)), ["weight", "bias"])
    layer.bias[:] = rng.normal(size=D_OUT)
    x, g = inputs64(), upstream((B, D_OUT))

    def f():
        return float((layer.forward(x, True) * g).sum())

    f()
    dx = layer.backward(g)
    dw, db = layer.grad_weight.copy(), layer.grad_bias.copy()
    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, numeric_grad(f, layer.weight), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numeric_grad(f, layer.bias), rtol=1e-6, atol=1e-8)


def test_first_dense_layer_skips_the_input_gradient():
    layer = Dense("d", np.ones((D_IN, D_OUT), np.float32), input_grad=False)
    layer.forward(np.ones((B, D_IN), np.float32), True)
    assert layer.backward(np.ones((B, D_OUT), np.float32)) is None
    assert np.all(layer.grad_weight == B)


@pytest.mark.parametrize("cls", [Sigmoid, ReLU, Tanh, Softmax])
def test_activation_backward_matches_numerical_gradient(cls):
    layer, x, g = cls("a"), inputs64(), upstream((B, D_IN))

    def f():
        return float((layer.forward(x, True) * g).sum())

    f()
    np.testing.assert_allclose(layer.backward(g), numeric_grad(f, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_backward_matches_numerical_gradient(train):
    rng = np.random.default_rng(0)
    layer = as_float64(BatchNorm("bn", D_IN), ["weight", "bias"])
    layer.weight[:], layer.bias[:] = rng.normal(size=D_IN), rng.normal(size=D_IN)
    layer.running_mean[:], layer.running_var[:] = rng.normal(size=D_IN), rng.uniform(0.5, 2, size=D_IN)
    x, g = inputs64(), upstream((B, D_IN))

    def f():
        return float((layer.forward(x, train) * g).sum())

    f()
    dx = layer.backward(g)
    dw, db = layer.grad_weight.copy(), layer.grad_bias.copy()
    # finite differences in float32 statistics: looser than the others
    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw, numeric_grad(f, layer.weight), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(db, numeric_grad(f, layer.bias), rtol=1e-4, atol=1e-5)


def test_losses_backward_match_numerical_gradient():
    y = np.array([0, 2, 1, 2])
    for loss, z in ((SoftmaxCrossEntropy(), inputs64(shape=(B, D_OUT))),
                    (SquaredError(0.01, 0.99), np.random.default_rng(3).uniform(size=(B, D_OUT)))):
        def f():
            return loss.forward(z, y)

        f()
        np.testing.assert_allclose(loss.backward(), numeric_grad(f, z), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- torch autograd

def torch_check(ours: np.ndarray, theirs: torch.Tensor) -> None:
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_dense_matches_torch_linear():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(D_IN, D_OUT)).astype(np.float32)
    layer = Dense("d", weight)
    layer.bias[:] = rng.normal(size=D_OUT)
    x, g = inputs64().astype(np.float32), upstream((B, D_OUT)).astype(np.float32)
    out = layer.forward(x, True)
    dx = layer.backward(g)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(weight.T.copy(), requires_grad=True)  # torch keeps (D_out, D_in)
    bt = torch.tensor(layer.bias, requires_grad=True)
    ref = F.linear(xt, wt, bt)
    ref.backward(torch.tensor(g))
    torch_check(out, ref)
    torch_check(dx, xt.grad)
    torch_check(layer.grad_weight, wt.grad.T)
    torch_check(layer.grad_bias, bt.grad)


@pytest.mark.parametrize("cls, fn", [(Sigmoid, torch.sigmoid), (ReLU, torch.relu), (Tanh, torch.tanh),
                                     (Softmax, lambda t: torch.softmax(t, dim=1))])
def test_activation_matches_torch(cls, fn):
    x, g = inputs64().astype(np.float32), upstream((B, D_IN)).astype(np.float32)
    layer = cls("a")
    out = layer.forward(x, True)
    assert out.dtype == np.float32
    xt = torch.tensor(x, requires_grad=True)
    ref = fn(xt)
    ref.backward(torch.tensor(g))
    torch_check(out, ref)
    torch_check(layer.backward(g), xt.grad)


def test_sigmoid_does_not_overflow_for_large_inputs():
    with np.errstate(all="raise"):
        a = Sigmoid("s").forward(np.array([[-1e4, 0.0, 1e4]], np.float32), False)
    np.testing.assert_allclose(a, [[0.0, 0.5, 1.0]])


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_matches_torch(train):
    rng = np.random.default_rng(0)
    layer = BatchNorm("bn", D_IN)
    layer.weight[:], layer.bias[:] = rng.normal(size=D_IN), rng.normal(size=D_IN)
    layer.running_mean[:], layer.running_var[:] = rng.normal(size=D_IN), rng.uniform(0.5, 2, size=D_IN)
    mean_t, var_t = torch.tensor(layer.running_mean), torch.tensor(layer.running_var)
    x, g = inputs64().astype(np.float32), upstream((B, D_IN)).astype(np.float32)
    out = layer.forward(x, train)
    dx = layer.backward(g)

    xt = torch.tensor(x, requires_grad=True)
    wt, bt = torch.tensor(layer.weight, requires_grad=True), torch.tensor(layer.bias, requires_grad=True)
    ref = F.batch_norm(xt, mean_t, var_t, wt, bt, training=train, momentum=0.1, eps=1e-5)
    ref.backward(torch.tensor(g))
    torch_check(out, ref)
    torch_check(dx, xt.grad)
    torch_check(layer.grad_weight, wt.grad)
    torch_check(layer.grad_bias, bt.grad)
    torch_check(layer.running_mean, mean_t)  # updated in training, untouched in evaluation
    torch_check(layer.running_var, var_t)


def test_dropout_with_its_mask_matches_torch_and_is_off_in_evaluation():
    layer = Dropout("drop", 0.5, np.random.default_rng(0))
    x, g = inputs64(shape=(64, 32)).astype(np.float32), upstream((64, 32)).astype(np.float32)
    out = layer.forward(x, True)
    mask = layer.mask
    assert set(np.unique(mask)) == {0.0, 2.0} and 0.3 < (mask == 0).mean() < 0.7  # kept ones scaled by 1/(1-p)
    xt = torch.tensor(x, requires_grad=True)
    ref = xt * torch.tensor(mask)
    ref.backward(torch.tensor(g))
    torch_check(out, ref)
    torch_check(layer.backward(g), xt.grad)
    assert layer.forward(x, False) is x and layer.mask is None


def test_losses_match_torch():
    z = inputs64(shape=(B, D_OUT)).astype(np.float32)
    y = np.array([0, 2, 1, 2])
    ce = SoftmaxCrossEntropy()
    zt = torch.tensor(z, requires_grad=True)
    ref = F.cross_entropy(zt, torch.tensor(y))
    ref.backward()
    assert ce.forward(z, y) == pytest.approx(ref.item(), rel=1e-6)
    torch_check(ce.backward(), zt.grad)

    a = np.random.default_rng(3).uniform(size=(B, D_OUT)).astype(np.float32)
    mse = SquaredError(0.01, 0.99)
    at = torch.tensor(a, requires_grad=True)
    target = torch.full((B, D_OUT), 0.01)
    target[torch.arange(B), torch.tensor(y)] = 0.99
    ref = 0.5 * ((at - target) ** 2).sum(dim=1).mean()
    ref.backward()
    assert mse.forward(a, y) == pytest.approx(ref.item(), rel=1e-6)
    torch_check(mse.backward(), at.grad)


# ----------------------------------------------------------------------------- a whole network

def torch_twin(net: Network, activation, output) -> torch.nn.Sequential:
    """The same network in torch, with the glass-box network's weights."""
    modules = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            linear = torch.nn.Linear(*layer.weight.shape)
            linear.weight.data, linear.bias.data = torch.tensor(layer.weight.T.copy()), torch.tensor(layer.bias)
            modules.append(linear)
        elif isinstance(layer, BatchNorm):
            modules.append(torch.nn.BatchNorm1d(len(layer.weight), momentum=0.1, eps=1e-5))
        elif not isinstance(layer, Dropout):
            modules.append(activation())
    return torch.nn.Sequential(*modules, *([output()] if output else []))


@pytest.mark.parametrize("options, activation, output", [
    ({"hidden": [6, 5], "activation": "tanh", "batch_norm": True, "batch_size": 8}, torch.nn.Tanh, None),
    ({"preset": "classic", "hidden": [6]}, torch.nn.Sigmoid, torch.nn.Sigmoid),
])
def test_network_gradients_match_torch(options, activation, output):
    net = Network(glassbox_options(options), n_inputs=D_IN, n_classes=D_OUT, seed=0)
    x, y = inputs64(shape=(8, D_IN)).astype(np.float32), np.array([0, 1, 2, 0, 1, 2, 0, 1])
    loss, grad_z = net.loss_gradient(x, y, train=True)
    net.backward(grad_z)

    twin = torch_twin(net, activation, output)
    twin.train()
    out = twin(torch.tensor(x))
    if output is None:
        ref = F.cross_entropy(out, torch.tensor(y))
    else:
        target = torch.full(out.shape, 0.01)
        target[torch.arange(len(y)), torch.tensor(y)] = 0.99
        ref = 0.5 * ((out - target) ** 2).sum(dim=1).mean()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    theirs = [p.grad for m in twin if isinstance(m, (torch.nn.Linear, torch.nn.BatchNorm1d))
              for p in (m.weight, m.bias)]
    assert len(theirs) == len(net.params)
    for ours, grad in zip(net.params, theirs):
        expected = grad.T if ours.name.startswith("dense") and ours.name.endswith("weight") else grad
        np.testing.assert_allclose(ours.grad, expected.numpy(), rtol=1e-4, atol=1e-6, err_msg=ours.name)
