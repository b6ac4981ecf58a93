"""tv: torchvision's classification architectures by name, trained from scratch (no pretrained weights).

``--model tv:resnet18`` is ``model.name=tv`` with ``model.options.arch=resnet18``; any name in
``torchvision.models.list_models(module=torchvision.models)`` works. The first convolution is rebuilt
for the data's channels (1 for grey images), and the classifier for the number of classes.

These networks were designed for 224x224 photos and most shrink the image 32-fold. On 28x28 inputs
(smallest sides measured with torchvision 0.29, one grey image in eval mode):
- resnet*, resnext*, wide_resnet*, googlenet, shufflenet_v2*: the stem (stride-2 conv + max-pool)
  leaves 7x7 before the first block and 1x1 at the end; swin* patchifies 4x4 to the same 7x7. They
  train, but ``resize=64`` or more keeps detail (16x16 after the stem).
- mobilenet*, efficientnet*, mnasnet*, regnet*: a stride-2 stem (14x14), 1x1 at the end;
  ``resize=64`` helps the same way.
- densenet* (needs >= 29 px), vgg*, convnext* (>= 32), alexnet (>= 63), inception_v3 (>= 75) cannot
  take 28x28 at all, and vit_* and maxvit_t take exactly 224x224: set ``resize`` (the model refuses
  to build otherwise, naming the resize to use). googlenet (>= 15) and squeezenet1_0/1_1 (>= 21/17)
  take 28x28 but not 8x8; the other families above take 8x8.
``resize`` costs compute with the square of the side: resize=64 is ~5x the work of 28x28.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from neuroclass.config import rule
from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import cross_entropy
from neuroclass.models.registry import register_model

# smallest input side each architecture accepts (pooling or patching runs out of pixels below it),
# and the architectures built for one fixed side; matched by name prefix
MIN_SIDE = {"googlenet": 15, "squeezenet1_0": 21, "squeezenet1_1": 17, "densenet": 29, "vgg": 32,
            "convnext": 32, "alexnet": 63, "inception_v3": 75}
FIXED_SIDE = {"vit_": 224, "maxvit_t": 224}
AUX_HEADS = ("googlenet", "inception_v3")  # built without their auxiliary training heads


def torchvision_archs() -> list[str]:
    import torchvision.models  # imported on use, so that `import neuroclass` does not pay for it

    return torchvision.models.list_models(module=torchvision.models)


@dataclass(frozen=True)
class TorchvisionConfig:
    # a name from torchvision.models.list_models(module=torchvision.models), looked up when checked
    arch: str = field(default="resnet18", metadata=rule(choices=torchvision_archs, doc=(
        "one of torchvision's classification models (torchvision.models.list_models(module=torchvision.models))")))
    resize: int = field(default=0, metadata=rule(ge=0))  # > 0: resize batches to resize x resize first


def check_side(arch: str, side: int) -> None:
    """Refuse input sides the architecture cannot take, naming the resize that works."""
    fixed = next((s for prefix, s in FIXED_SIDE.items() if arch.startswith(prefix)), None)
    least = next((s for prefix, s in MIN_SIDE.items() if arch.startswith(prefix)), 1)
    if (fixed and side != fixed) or side < least:
        need = f"exactly {fixed}" if fixed else f"at least {least}"
        raise NeuroclassError(f"model tv:{arch} needs images {need} pixels on a side, got {side}; "
                              f"set model.options.resize={fixed or least}")


def adapt_first_conv(net: nn.Module, channels: int) -> None:
    """Rebuild the first Conv2d for ``channels`` inputs. Its random kernels are reused so the
    architecture's own initialisation scale holds: grey input sums the RGB kernels (what a grey
    image, R = G = B, would have met); other counts cycle them, scaled by 3 / channels."""
    name, old = next((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    if old.in_channels == channels:
        return
    new = nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
                    old.groups, bias=old.bias is not None, padding_mode=old.padding_mode)
    with torch.no_grad():
        if channels == 1:
            new.weight.copy_(old.weight.sum(1, keepdim=True))
        else:
            repeats = math.ceil(channels / old.in_channels)
            cycled = old.weight.repeat(1, repeats, 1, 1)[:, :channels]
            new.weight.copy_(cycled * (old.in_channels / channels))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    parent, _, child = name.rpartition(".")
    setattr(net.get_submodule(parent), child, new)


class TorchvisionNet(nn.Module):
    def __init__(self, cfg: TorchvisionConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        import torchvision.models

        if len(input_shape) != 3:
            raise NeuroclassError(f"model tv:{cfg.arch} needs images (C, H, W); got input shape "
                                  f"{input_shape}: for a table's feature rows use --model mlp")
        check_side(cfg.arch, cfg.resize or min(input_shape[1:]))
        extra = {"aux_logits": False, "init_weights": True} if cfg.arch in AUX_HEADS else {}
        self.model = torchvision.models.get_model(cfg.arch, weights=None, num_classes=num_classes, **extra)
        adapt_first_conv(self.model, input_shape[0])
        self.arch, self.resize = cfg.arch, cfg.resize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize:
            size = (self.resize, self.resize)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (B, C, R, R)
        return self.model(x)  # (B, num_classes)


def tv_head(net: TorchvisionNet) -> str:
    """The final classifier layer of a torchvision model, by torchvision's naming: ``fc`` (resnet*,
    resnext*, wide_resnet*, regnet*, googlenet, inception_v3, shufflenet_v2*), ``heads.head``
    (vit_*), ``head`` (swin*), ``classifier`` itself (densenet*) or its last layer (alexnet, vgg*,
    mobilenet*, efficientnet*, mnasnet*, convnext*, maxvit_t); squeezenet's classifier ends in ReLU
    and pooling after its 1x1 conv, ``classifier.1``.

    >>> tv_head(build_tv(TorchvisionConfig(arch="mobilenet_v3_small"), (1, 28, 28), 10))
    'model.classifier.3'
    """
    model = net.model
    if net.arch.startswith("squeezenet"):
        return "model.classifier.1"
    for child, path in (("fc", "fc"), ("heads", "heads.head"), ("head", "head")):
        if hasattr(model, child):
            return f"model.{path}"
    classifier = model.classifier
    if isinstance(classifier, nn.Sequential):
        return f"model.classifier.{len(classifier) - 1}"
    return "model.classifier"


# features: the head's input; (B, C) for every architecture but squeezenet, whose 1x1-conv head
# takes the last feature map, flattened to (B, 512 * h * w)
@register_model("tv", TorchvisionConfig,
                "a torchvision architecture by name: tv:resnet18, tv:mobilenet_v3_small, ... (untrained)",
                head=tv_head, features=tv_head, feature_side="input", output="logits", loss=cross_entropy)
def build_tv(cfg: TorchvisionConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return TorchvisionNet(cfg, input_shape, num_classes)
