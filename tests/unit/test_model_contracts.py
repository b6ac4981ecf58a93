"""What every registered model family declares (head, feature layer, output kind, loss) holds for the
network it builds: probabilities from ``output_logits``, the head, the features ``embed`` reads, the
loss, and a state-dict round trip."""
import io

import pytest
import torch
from safetensors.torch import load, save

from neuroclass.config import ModelConfig
from neuroclass.models import MODELS, create
from neuroclass.models.registry import OutputKind, Side, split_name
from neuroclass.models.transfer import find_head
from neuroclass.models.tv import TorchvisionConfig, TorchvisionNet, tv_head

SHAPE, CLASSES, BATCH = (1, 28, 28), 7, 4
# (model name, small options, width D of the (B, D) features at 28x28)
CASES = [
    ("mlp", {"hidden": [16]}, 16),  # the last hidden layer
    ("cnn", {"channels": [4, 8], "hidden": 16}, 16),  # the hidden layer
    ("cnn", {"channels": [4, 8], "hidden": 0}, 8 * 7 * 7),  # no hidden layer: the flattened last stage
    ("resnet", {"width": 4, "blocks": [1, 1]}, 8),  # pooled last stage: width * 2
    ("inception", {"width": 2, "blocks": [1, 1]}, 16),  # pooled last stage: 4 branches * width * 2
    ("vit", {"dim": 8, "depth": 1, "heads": 2}, 8),  # the class token
    # primary capsule maps * their dim * a 6x6 grid ((28 - 17) // 2 + 1)
    ("capsnet", {"conv_channels": 4, "primary_maps": 2, "primary_dim": 4, "class_dim": 4}, 2 * 4 * 6 * 6),
    ("tv:mobilenet_v3_small", {}, 1024),  # classifier[-1]'s input: the hidden layer
    ("tv:squeezenet1_1", {}, 512),  # the 1x1-conv head's input map, 1x1 at 28x28
]
IDS = [f"{name}-{width}" for name, _, width in CASES]


def build(name, options, seed=0):
    torch.manual_seed(seed)
    return create(ModelConfig(name=name, options=options), SHAPE, CLASSES,
                  torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.25))


def images(seed=1):
    return torch.randint(0, 256, (BATCH, *SHAPE), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_every_family_is_covered_and_declares_everything():
    assert sorted({split_name(name, {})[0] for name, _, _ in CASES}) == MODELS.names()
    for name in MODELS.names():
        family = MODELS.get(name)
        assert isinstance(family.output, OutputKind) and isinstance(family.feature_side, Side)
        assert callable(family.loss) and family.head and family.features


@pytest.mark.parametrize("name, options, width", CASES, ids=IDS)
def test_output_logits_give_probabilities_with_the_models_decision(name, options, width):
    model = build(name, options).eval()
    with torch.no_grad():
        out = model(images())
        logits = model.output_logits(out)
    proba = logits.softmax(1)
    assert out.shape == logits.shape == (BATCH, CLASSES) and torch.isfinite(logits).all()
    assert torch.allclose(proba.sum(1), torch.ones(BATCH), atol=1e-5)
    # float64: a fresh torchvision model's logits differ by ~1e-10, which a float32 softmax ties
    assert torch.equal(logits.double().softmax(1).argmax(1), out.argmax(1))
    if model.family.output is OutputKind.LENGTHS:
        # probabilities are the lengths normalised, not a softmax squeezed towards uniform
        assert ((out >= 0) & (out < 1)).all()
        assert torch.allclose(proba, out / out.sum(1, keepdim=True), atol=1e-5)
    else:
        assert logits is out


def test_lengths_to_logits_keeps_zero_lengths_finite_and_temperature_meaningful():
    capsnet = build(*CASES[6][:2])
    lengths = torch.tensor([[0.6, 0.2, 0.0]])
    logits = capsnet.output_logits(lengths)
    assert torch.isfinite(logits).all()
    assert torch.allclose(logits.softmax(1), torch.tensor([[0.75, 0.25, 0.0]]), atol=1e-5)
    # a temperature T gives length^(1/T) normalised: T < 1 sharpens, T > 1 flattens
    assert (logits / 0.5).softmax(1)[0, 0] > 0.75 > (logits / 2).softmax(1)[0, 0]


def features_of(model, x):
    """The declared feature tensor of ``x``, flattened to (B, D), read with a hook as embed does."""
    head = find_head(model)
    module, captured = model.get_submodule(head.feature_module), []
    if head.feature_side == "input":
        hook = module.register_forward_pre_hook(lambda m, args: captured.append(args[0]))
    else:
        hook = module.register_forward_hook(lambda m, args, out: captured.append(out))
    try:
        with torch.no_grad():
            model(x)
    finally:
        hook.remove()
    return captured[0].flatten(1)


@pytest.mark.parametrize("name, options, width", CASES, ids=IDS)
def test_declared_head_and_feature_layer(name, options, width):
    model = build(name, options).eval()
    head = find_head(model)
    params = dict(model.named_parameters())
    assert head.params and set(head.params) <= set(params)
    # the head maps to the classes: one of each head weight's dimensions is the class count
    assert all(CLASSES in params[p].shape for p in head.params if params[p].ndim > 1)
    assert head.feature_module.startswith("net.") and head.feature_side in ("input", "output")
    assert features_of(model, images()).shape == (BATCH, width)


@pytest.mark.parametrize("name, options, width", CASES, ids=IDS)
def test_declared_loss_is_finite_and_trains_the_head(name, options, width):
    model = build(name, options).train()
    out = model(images())
    y = torch.tensor([0, 3, 6, 3])
    loss = model.loss(out, y, 0.1)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert any(grads[p].abs().sum() > 0 for p in find_head(model).params)
    soft = torch.softmax(torch.randn(BATCH, CLASSES, generator=torch.Generator().manual_seed(2)), 1)
    assert torch.isfinite(model.loss(out.detach(), soft, 0.0))  # mixup / cutmix targets


@pytest.mark.parametrize("name, options, width", CASES, ids=IDS)
def test_state_dict_round_trip_gives_identical_outputs(name, options, width):
    model, other = build(name, options, seed=0).eval(), build(name, options, seed=1).eval()
    x = images()
    with torch.no_grad():
        assert not torch.equal(model(x), other(x))
        state = load(save({k: v.contiguous() for k, v in model.state_dict().items()}))
        other.load_state_dict(state)
        assert torch.equal(model(x), other(x))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)  # the declarations are not state: only tensors are saved
    buffer.seek(0)
    assert set(torch.load(buffer, weights_only=True)) == set(state)


def smallest_arch_per_module():
    """One torchvision architecture per model module (resnet.py, vgg.py, ...): the fewest parameters."""
    import torchvision.models as tvm

    by_module = {}
    for arch in tvm.list_models(module=tvm):
        size = tvm.get_model_weights(arch).DEFAULT.meta["num_params"]
        module = tvm.get_model_builder(arch).__module__
        if module not in by_module or size < by_module[module][1]:
            by_module[module] = (arch, size)
    return sorted(arch for arch, _ in by_module.values())


@pytest.mark.parametrize("arch", smallest_arch_per_module())
def test_tv_head_is_the_classifier_layer_of_every_torchvision_family(arch):
    cfg, shape = TorchvisionConfig(arch=arch), (3, 224, 224)  # every architecture takes 224x224
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            net = TorchvisionNet(cfg, shape, CLASSES)
    except NotImplementedError:  # regnet computes its widths from tensors, which meta ones lack
        net = TorchvisionNet(cfg, shape, CLASSES)
    head = net.get_submodule(tv_head(net))
    assert head.weight.shape[0] == CLASSES  # Linear out_features or the 1x1 conv's out_channels
