import json

import pytest
import torch
from torch import nn

from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.activations import dead_relu_fraction


def _net():
    """conv 1->4 channels -> ReLU -> flatten -> linear 64->10 -> ReLU6 -> linear 10->2."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(64, 10), nn.ReLU6(), nn.Linear(10, 2))
    with torch.no_grad():
        net[0].bias[:2] = -1e3  # channels 0 and 1 can never be positive on inputs in [0, 1]
        net[3].bias[:3] = -1e3  # features 0, 1, 2 likewise
        net[0].bias[2:] = 1e3  # the rest always fire, so the expected counts are exact
        net[3].bias[3:] = 1e3
    return net


def test_forced_dead_units_are_counted():
    x = torch.rand(300, 1, 4, 4)
    found = dead_relu_fraction(_net(), x)
    assert found["layers"] == [{"name": "1", "units": 4, "dead": 2}, {"name": "4", "units": 10, "dead": 3}]
    assert (found["dead"], found["units"]) == (5, 14)
    assert found["fraction"] == pytest.approx(5 / 14)
    assert json.loads(json.dumps(found)) == found


def test_hooks_removed_and_mode_restored_even_on_error():
    net = _net().train()
    with pytest.raises(RuntimeError):
        dead_relu_fraction(net, torch.rand(5, 1, 3, 3))  # wrong size for the linear layer
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    dead_relu_fraction(net, torch.rand(5, 1, 4, 4))
    assert net.training and all(not m._forward_hooks for m in net.modules())


def test_reused_module_counts_each_call_and_max_examples_limits_the_sample():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(-self.relu(x))  # the second call sees only values <= 0: all dead

    seen = []
    model = Twice()
    model.register_forward_pre_hook(lambda m, inp: seen.append(len(inp[0])))
    found = dead_relu_fraction(model, torch.rand(600, 3), max_examples=300)
    assert [(l["name"], l["dead"]) for l in found["layers"]] == [("relu", 0), ("relu#2", 3)]
    assert sum(seen) == 300


def test_a_model_without_relu_modules():
    found = dead_relu_fraction(nn.Sequential(nn.Linear(3, 2), nn.GELU()), torch.rand(4, 3))
    assert found == {"layers": [], "dead": 0, "units": 0, "fraction": 0.0}


@pytest.mark.parametrize("x", [torch.rand(0, 3), torch.rand(3), "pixels"])
def test_bad_input_raises_one_clear_error(x):
    with pytest.raises(NeuroclassError, match="x must be"):
        dead_relu_fraction(nn.Sequential(nn.ReLU()), x)


def test_a_neuroclass_cnn_takes_uint8_images():
    from neuroclass.config import ModelConfig
    from neuroclass.models import create

    model = create(ModelConfig(name="cnn", options={"channels": [4, 8], "hidden": 16}), (1, 8, 8), 3,
                   torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    x = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    found = dead_relu_fraction(model, x)
    assert found["units"] == 4 + 8 + 16 and len(found["layers"]) == 3
