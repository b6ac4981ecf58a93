"""explain's view of every registered family's network: found from the family's declarations
(head, feature layer), on an untrained network: the first layer, a map per stage, attribution maps
of the input's shape, Grad-CAM for conv networks, the dense steps for the mlp."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroclass.config import ModelConfig
from neuroclass.evaluation.explain_attribution import grad_cam_maps, input_maps
from neuroclass.evaluation.explain_steps import last_layer_update
from neuroclass.evaluation.explain_trace import (dense_layers, first_layer, gives_logits, grad_cam_layer, head_input,
                                                 stage_maps, trace_network)
from neuroclass.models import MODELS, create

SHAPE = (1, 28, 28)
NAMES = {"tv": "tv:resnet18"}  # a family with architectures: one of them
CONV = {"capsnet", "cnn", "inception", "resnet", "tv"}  # the families whose stages Grad-CAM reads


@pytest.fixture(scope="module")
def image():
    return torch.randint(0, 256, (1, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("family", MODELS.names())
def test_every_family_shows_its_first_layer_stages_and_maps(family, image):
    torch.manual_seed(0)
    model = create(ModelConfig(name=NAMES.get(family, family)), SHAPE, 4, torch.full((1, 1, 1, 1), 0.3),
                   torch.full((1, 1, 1, 1), 0.2)).eval()
    seen = model.standardize(image)
    trace = trace_network(model, seen)
    with torch.no_grad():
        expected = model.output_logits(model(image)).numpy()
    np.testing.assert_allclose(trace.logits.numpy(), expected, rtol=1e-5, atol=1e-6)
    stages = stage_maps(trace)
    dense = dense_layers(model, trace)
    first = first_layer(trace, dense)
    assert first is not None and first.shown
    assert first.kind == ("dense" if family == "mlp" else "conv")
    sides = [s.maps.shape[1:] for s in stages]
    assert all(h * w > 1 for h, w in sides) and len(set(sides)) == len(sides)  # one map per resolution
    assert (len(stages) > 0) == (family != "mlp")
    cam = grad_cam_layer(trace, stages)
    assert (cam is not None) == (family in CONV)
    maps = input_maps(model, seen, {"predicted": 1}, torch.zeros_like(seen), "zeros")
    if cam is not None:
        maps += grad_cam_maps(model, seen, {"predicted": 1}, cam)
    for a in maps:
        assert a.values.shape == (SHAPE if a.method != "Grad-CAM" else SHAPE[1:]) and np.isfinite(a.values).all()
    if family == "capsnet":  # the head is a parameter: no dense step, no input to it
        assert dense == [] and head_input(trace) is None and not gives_logits(trace)
    else:
        assert dense[-1].step.name == trace.head and dense[-1].step.units == 4 and gives_logits(trace)
        np.testing.assert_allclose(dense[-1].step.z, trace.logits[0].double().numpy(), rtol=1e-4, atol=1e-5)
        assert all(d.matches for d in dense[:-1])  # a chain of dense layers ending in the logits
    if family == "cnn":  # its head: hidden Linear -> ReLU -> Dropout -> Linear, both shown
        assert [d.step.name for d in dense] == ["head.2", "head.5"]


@pytest.mark.parametrize("family", sorted(set(MODELS.names()) - {"capsnet"}))
def test_the_gradient_step_is_on_the_layer_that_gives_the_logits(family, image):
    """dL/dW of the step shown is torch autograd's for the weights of the layer whose output is
    the logits, whichever family built the network."""
    torch.manual_seed(0)
    model = create(ModelConfig(name=NAMES.get(family, family)), SHAPE, 4, torch.full((1, 1, 1, 1), 0.3),
                   torch.full((1, 1, 1, 1), 0.2)).eval()
    trace = trace_network(model, model.standardize(image))
    head = model.net.get_submodule(trace.head)
    step = last_layer_update(head.weight.detach().double().numpy(), head.bias.detach().double().numpy(),
                             head_input(trace), 2, 0.1)
    F.cross_entropy(model.output_logits(model(image)), torch.tensor([2])).backward()
    np.testing.assert_allclose(step.grad_weight, head.weight.grad.double().numpy(), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(step.grad_bias, head.bias.grad.double().numpy(), rtol=1e-3, atol=1e-6)
