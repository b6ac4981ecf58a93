"""Family-specific behaviour of the model zoo: capsnet's margin loss in the Trainer, tv:ARCH names,
resnet depth presets, padding of inputs that patches or 9x9 convs do not fit."""
import math

import pytest
import torch
import torch.nn.functional as F

from neuroclass.runs import load_model, model_metadata, save_model
from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig
from neuroclass.data.blocks import make_blocks
from neuroclass.errors import NeuroclassError
from neuroclass.models import create, resolved_options
from neuroclass.models.capsnet import margin_loss, squash
from neuroclass.models.resnet import BasicBlock, Bottleneck
from neuroclass.inference.logits import predict_outputs
from neuroclass.models.layers import cross_entropy
from neuroclass.training.trainer import Trainer, loss_function

TINY_CAPS = {"conv_channels": 4, "primary_maps": 2, "primary_dim": 4, "class_dim": 4}


def build(name, shape, options, classes=3):
    c = shape[0]
    return create(ModelConfig(name=name, options=options), shape, classes,
                  torch.full((1, c, 1, 1), 0.5), torch.full((1, c, 1, 1), 0.25))


def test_capsnet_margin_loss_values():
    lengths = torch.tensor([[0.95, 0.05, 0.5]])
    assert margin_loss(lengths, torch.tensor([0])).item() == pytest.approx(0.5 * 0.4**2)
    one_hot = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.equal(margin_loss(lengths, torch.tensor([0])), margin_loss(lengths, one_hot))
    wrong = margin_loss(lengths, torch.tensor([1]))
    assert wrong > margin_loss(lengths, torch.tensor([0]))
    smoothed = margin_loss(lengths, torch.tensor([0]), label_smoothing=0.1)
    assert smoothed != margin_loss(lengths, torch.tensor([0]))


def test_squash_keeps_direction_and_bounds_length():
    s = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    v = squash(s)
    assert v[0].norm().item() == pytest.approx(25 / 26)  # |s|^2 / (1 + |s|^2) with |s| = 5
    assert torch.allclose(v[0] / v[0].norm(), s[0] / 5)
    assert torch.equal(v[1], torch.zeros(2))


def test_trainer_uses_capsnet_margin_loss():
    train, val = make_blocks(n=64, size=28, seed=0), make_blocks(n=32, size=28, seed=1)
    torch.manual_seed(0)
    model = build("capsnet", train.input_shape, TINY_CAPS, classes=len(train.classes))
    assert loss_function(model) is margin_loss
    assert loss_function(build("cnn", train.input_shape, {"channels": [4], "hidden": 0})) is cross_entropy
    trainer = Trainer(TrainConfig(epochs=1, batch_size=16, quiet=True), OptimConfig(), AugmentConfig(),
                      torch.device("cpu"))
    row = trainer.fit(model, train, val).history[0]
    assert math.isfinite(row["loss"]) and math.isfinite(row["val_loss"])
    lengths = predict_outputs(model, val.x, torch.device("cpu"))
    assert row["val_loss"] == pytest.approx(margin_loss(lengths, val.y).item())
    assert row["val_loss"] != pytest.approx(F.cross_entropy(lengths, val.y).item())


def test_capsnet_outputs_lengths_and_pads_small_inputs():
    model = build("capsnet", (1, 8, 8), TINY_CAPS)  # padded to 17x17: one primary grid cell
    assert model.net.transform.shape[0] == TINY_CAPS["primary_maps"]
    out = model(torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8))
    assert out.shape == (2, 3) and ((out >= 0) & (out < 1)).all()


def test_tv_name_parsing_and_did_you_mean():
    assert resolved_options("tv:resnet18", {}) == {"arch": "resnet18", "resize": 0}
    assert resolved_options("tv:resnet18", {"arch": "resnet18", "resize": 64})["resize"] == 64
    assert resolved_options("tv", {"arch": "resnet18"}) == resolved_options("tv:resnet18", {})
    with pytest.raises(NeuroclassError, match="Did you mean 'resnet18'"):
        resolved_options("tv:resnet19", {})
    with pytest.raises(NeuroclassError, match="give the architecture once"):
        resolved_options("tv:resnet18", {"arch": "resnet34"})
    with pytest.raises(NeuroclassError, match="has no architectures"):
        resolved_options("cnn:resnet18", {})


@pytest.mark.parametrize("family_name", ["tv:shufflenet_v2_x0_5", "tv"])
def test_tv_model_json_round_trip(family_name, tmp_path):
    """model.json holds the name as given ('tv:ARCH' today) and the options with arch: both load."""
    options = {} if ":" in family_name else {"arch": "shufflenet_v2_x0_5"}
    model = build(family_name, (1, 28, 28), options).eval()
    cfg = ModelConfig(name=family_name, options=options)
    meta = model_metadata(cfg, resolved_options(family_name, options), (1, 28, 28), ["a", "b", "c"],
                          "image", {})
    assert meta["options"] == {"arch": "shufflenet_v2_x0_5", "resize": 0}
    save_model(tmp_path, model, meta)
    loaded, _ = load_model(tmp_path)
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_tv_adapts_stem_channels_and_resizes():
    model = build("tv", (1, 8, 8), {"arch": "shufflenet_v2_x0_5", "resize": 32})
    first = model.net.model.conv1[0]
    assert first.in_channels == 1
    assert model(torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)).shape == (2, 3)


def test_tv_refuses_inputs_the_architecture_cannot_take():
    with pytest.raises(NeuroclassError, match="resize=32"):
        build("tv", (1, 28, 28), {"arch": "vgg11"})  # refused before anything is built
    with pytest.raises(NeuroclassError, match="resize=224"):
        build("tv", (3, 32, 32), {"arch": "vit_b_16", "resize": 64})


def test_resnet_defaults_unchanged_and_depth_presets():
    default = build("resnet", (1, 28, 28), {})
    assert [type(b) for b in default.net.stages] == [BasicBlock] * 3
    assert default.net.stages[-1].conv2.out_channels == 128  # width 32 doubled twice
    r10 = build("resnet", (1, 8, 8), {"width": 2, "depth": 10})
    assert len(r10.net.stages) == 4
    r50 = build("resnet", (1, 8, 8), {"width": 2, "depth": 50, "block": "bottleneck"})
    assert [type(b) for b in r50.net.stages] == [Bottleneck] * 16
    assert r50.net.head[-1].in_features == 2 * 8 * 4  # last stage width x expansion
    out = r50(torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8))
    assert out.shape == (2, 3)
    with pytest.raises(NeuroclassError, match="block=bottleneck"):
        build("resnet", (1, 8, 8), {"depth": 50})
    with pytest.raises(NeuroclassError, match="not both"):
        build("resnet", (1, 8, 8), {"depth": 18, "blocks": [2, 2]})


def test_vit_pads_images_the_patches_do_not_tile():
    model = build("vit", (1, 30, 30), {"dim": 8, "depth": 1, "heads": 2, "patch_size": 4})
    assert model.net.pos_embed.shape == (1, 1 + 8 * 8, 8)  # 30 -> 32 = 8 patches a side, + class token
    assert model(torch.randint(0, 256, (2, 1, 30, 30), dtype=torch.uint8)).shape == (2, 3)
    with pytest.raises(NeuroclassError, match="multiple of heads"):
        build("vit", (1, 28, 28), {"dim": 10, "heads": 4})


def test_inception_concatenates_four_branches():
    model = build("inception", (3, 32, 32), {"width": 2, "blocks": [1, 2]})
    blocks = [m for m in model.net.stages if hasattr(m, "branch1")]
    assert len(blocks) == 3
    assert model.net.head[-1].in_features == 4 * 2 * 2  # 4 branches x stage-2 width
