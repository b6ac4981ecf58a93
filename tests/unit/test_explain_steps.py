"""The NumPy steps of explain against torch: a dense layer's sums and activations, batch
normalisation folded into a scale and shift, softmax with a temperature, and one SGD step on the
last layer."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.explain_steps import (ACTIVATION_FUNCTIONS, activate, dense_step, last_layer_update,
                                                 output_step, softmax)
from neuroclass.models.layers import ACTIVATIONS


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_is_what_the_torch_module_computes(name):
    z = torch.linspace(-6, 6, 101, dtype=torch.float64)
    expected = ACTIVATIONS[name]()(z).numpy()
    np.testing.assert_allclose(activate(name, z.numpy()), expected, rtol=1e-7, atol=1e-9)


def test_every_model_activation_has_a_numpy_step():
    assert set(ACTIVATIONS) <= set(ACTIVATION_FUNCTIONS)
    with pytest.raises(NeuroclassError, match="activation 'swish'"):
        activate("swish", np.zeros(2))


def test_a_dense_step_is_the_linear_layer_then_batch_norm_then_the_activation():
    torch.manual_seed(1)
    linear, norm = nn.Linear(12, 6).double(), nn.BatchNorm1d(6).double()
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.uniform_(-0.5, 0.5)
    norm.eval()
    x = torch.randn(12, dtype=torch.float64)
    scale = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).detach()
    shift = (norm.bias - norm.running_mean * scale).detach()
    step = dense_step(linear.weight.detach().numpy(), linear.bias.detach().numpy(), x.numpy(), "relu",
                      scale.numpy(), shift.numpy(), top=3, terms=4)
    z = linear(x[None])
    np.testing.assert_allclose(step.z, z[0].detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(step.a, torch.relu(norm(z))[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    assert [n.index for n in step.neurons] == list(np.argsort(-step.a, kind="stable")[:3])
    for neuron in step.neurons:  # what the page shows adds up: the largest terms plus the rest, plus b
        assert neuron.z == pytest.approx(neuron.weighted_sum + neuron.bias)
        assert sum(t.product for t in neuron.terms) + neuron.rest == pytest.approx(neuron.weighted_sum)
        products = [abs(t.product) for t in neuron.terms]
        assert products == sorted(products, reverse=True) and len(products) == 4


def test_units_asked_for_are_the_ones_shown_and_shapes_are_checked():
    step = dense_step(np.eye(3), None, np.array([1.0, 2.0, 3.0]), "identity", units=[2, 0])
    assert [n.index for n in step.neurons] == [2, 0] and step.neurons[0].bias == 0.0
    with pytest.raises(NeuroclassError, match="cannot take 4 inputs"):
        dense_step(np.eye(3), None, np.ones(4), "relu")


def test_softmax_with_a_temperature_and_the_two_losses():
    logits = np.array([2.0, 0.5, -1.0])
    out = output_step(logits, temperature=2.0, label=1)
    expected = torch.softmax(torch.tensor(logits) / 2.0, 0).numpy()
    np.testing.assert_allclose(out.probabilities, expected, rtol=1e-12)
    assert out.predicted == 0 and out.probabilities.sum() == pytest.approx(1.0)
    assert out.loss == pytest.approx(F.cross_entropy(torch.tensor(logits)[None], torch.tensor([1])).item())
    assert out.calibrated_loss == pytest.approx(-np.log(expected[1]))
    assert output_step(logits).loss is None
    np.testing.assert_allclose(softmax(np.array([1000.0, 1000.0])), [0.5, 0.5])  # no overflow


def test_one_update_is_a_torch_sgd_step_on_the_last_layer():
    torch.manual_seed(2)
    head = nn.Linear(5, 4).double()
    a_prev = torch.randn(5, dtype=torch.float64)
    label, lr = 2, 0.3
    step = last_layer_update(head.weight.detach().numpy(), head.bias.detach().numpy(), a_prev.numpy(), label, lr,
                             temperature=1.5)
    logits = head(a_prev[None])
    loss = F.cross_entropy(logits, torch.tensor([label]))
    loss.backward()
    np.testing.assert_allclose(step.grad_logits, (torch.softmax(logits, 1) - F.one_hot(torch.tensor([label]), 4))[0]
                               .detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(step.grad_weight, head.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(step.grad_bias, head.bias.grad.numpy(), rtol=1e-10)
    torch.optim.SGD(head.parameters(), lr=lr).step()
    new_logits = head(a_prev[None])[0].detach()
    np.testing.assert_allclose(step.new_logits, new_logits.numpy(), rtol=1e-10)
    np.testing.assert_allclose(step.new_probabilities, torch.softmax(new_logits / 1.5, 0).numpy(), rtol=1e-10)
    assert step.loss == pytest.approx(loss.item()) and step.new_loss < step.loss


def test_an_update_refuses_a_label_outside_the_classes_and_a_rate_not_above_zero():
    with pytest.raises(NeuroclassError, match="label 4"):
        last_layer_update(np.eye(3), None, np.ones(3), 4, 0.1)
    with pytest.raises(NeuroclassError, match="learning rate"):
        last_layer_update(np.eye(3), None, np.ones(3), 0, 0.0)
