"""Contract tests over every registered model family."""
import pytest
import torch

from neuroclass.runs import load_model, model_metadata, save_model
from neuroclass.config import ModelConfig
from neuroclass.models import MODELS, create, resolved_options

SMALL = {"mlp": {"hidden": [16]}, "cnn": {"channels": [4, 8], "hidden": 16},
         "resnet": {"width": 4, "blocks": [1, 1]}, "inception": {"width": 2, "blocks": [1, 1]},
         "vit": {"dim": 8, "depth": 1, "heads": 2},
         "capsnet": {"conv_channels": 4, "primary_maps": 2, "primary_dim": 4, "class_dim": 4},
         "tv": {"arch": "shufflenet_v2_x0_5"}}  # small, quick on CPU, takes 8x8 as is


def build(name, shape, classes=3, init="default"):
    c = shape[0]
    mean, std = torch.full((1, c, 1, 1), 0.5), torch.full((1, c, 1, 1), 0.25)
    return create(ModelConfig(name=name, init=init, options=SMALL.get(name, {})), shape, classes, mean, std)


def test_every_family_has_small_options():
    assert sorted(SMALL) == MODELS.names()


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_shapes_and_backward(name, shape):
    model = build(name, shape)
    x = torch.randint(0, 256, (4, *shape), dtype=torch.uint8)
    logits = model(x)
    assert logits.shape == (4, 3)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", MODELS.names())
def test_save_load_round_trip_is_exact(name, tmp_path):
    model = build(name, (1, 28, 28)).eval()
    meta = model_metadata(ModelConfig(name=name, options=SMALL[name]),
                          resolved_options(name, SMALL[name]), (1, 28, 28), ["a", "b", "c"], "image", {})
    save_model(tmp_path, model, meta)
    loaded, meta2 = load_model(tmp_path)
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta2["classes"] == ["a", "b", "c"]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("name", MODELS.names())
def test_same_seed_same_weights(name):
    torch.manual_seed(7)
    a = build(name, (1, 28, 28), init="he")
    torch.manual_seed(7)
    b = build(name, (1, 28, 28), init="he")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_init_schemes_change_weights():
    torch.manual_seed(0)
    he = build("mlp", (1, 8, 8), init="he").net.layers[1].weight
    torch.manual_seed(0)
    xavier = build("mlp", (1, 8, 8), init="xavier").net.layers[1].weight
    assert he.std() > xavier.std()  # Kaiming's fan-in gain sqrt(2/64) exceeds Glorot's here


def test_cnn_pooled_convs_run_at_the_pooled_resolution():
    from neuroclass.models.cnn import CNN, CNNConfig

    plain = CNN(CNNConfig(channels=[4, 8], hidden=16), (1, 28, 28), 3)
    deeper = CNN(CNNConfig(channels=[4, 8], hidden=16, pooled_convs=1), (1, 28, 28), 3)
    sizes = []
    for conv in (m for m in deeper.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_hook(lambda mod, inp, out: sizes.append((mod.in_channels, out.shape[-1])))
    deeper(torch.zeros(2, 1, 28, 28))
    # stage 1: conv at 28, then one at 14 after the pool; stage 2: conv at 14, then one at 7
    assert sizes == [(1, 28), (4, 14), (4, 14), (8, 7)]
    assert sum(isinstance(m, torch.nn.Conv2d) for m in plain.modules()) == 2
    assert deeper.feature_shape == plain.feature_shape == (8, 7, 7)


def test_strided_pointwise_equals_the_strided_1x1_convolution_and_survives_channels_last():
    from neuroclass.models.resnet import StridedPointwise

    conv = StridedPointwise(8, 16, 2)
    reference = torch.nn.Conv2d(8, 16, 1, stride=2, bias=False)
    reference.weight.data.copy_(conv.weight.data)
    for side in (64, 65):  # even sides crashed torch's strided 1x1 kernel on channels_last
        x = torch.rand(4, 8, side, side).to(memory_format=torch.channels_last).requires_grad_()
        out = conv(x)
        assert torch.allclose(out, reference(x), atol=1e-6) and out.shape[-1] == (side + 1) // 2
        out.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
    assert list(conv.state_dict()) == ["weight"]  # saved runs load as before
