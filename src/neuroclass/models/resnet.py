"""resnet: residual networks of basic blocks (two 3x3 convs) or bottleneck blocks (1x1 -> 3x3 -> 1x1),
a 3x3 stem sized for small images, global average pooling.

``depth`` picks the standard stage layouts (He et al. 2016): basic 10/18/34, bottleneck 50/101/152.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from neuroclass.config import rule
from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import cross_entropy
from neuroclass.models.registry import register_model

DEFAULT_BLOCKS = [1, 1, 1]
# depth counts weighted layers: stem + convs in the blocks + the classifier (18 = 1 + 2 * 8 + 1)
DEPTHS = {"basic": {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]},
          "bottleneck": {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}}


@dataclass(frozen=True)
class ResNetConfig:
    width: int = field(default=32, metadata=rule(gt=0))  # channels of the first stage; doubles per stage
    blocks: list[int] = field(default_factory=lambda: list(DEFAULT_BLOCKS),
                              metadata=rule(gt=0, min_items=1))  # blocks per stage
    block: str = field(default="basic", metadata=rule(choices=("basic", "bottleneck")))
    # a standard layout (DEPTHS) instead of blocks: 10/18/34 with basic, 50/101/152 with bottleneck blocks
    depth: Optional[int] = field(default=None, metadata=rule(choices=(10, 18, 34, 50, 101, 152)))
    dropout: float = field(default=0.0, metadata=rule(ge=0, lt=1))  # before the classifier
    # 2x2 max-pooling after the stem (the paper's stem pools too): the stages work on a quarter of
    # the pixels, so a CPU affords twice the width for the same time; false keeps the full grid
    stem_pool: bool = True

    def validate(self) -> None:
        """A depth fits one block type, and replaces ``blocks`` (checked when options resolve)."""
        stage_blocks(self)


class BasicBlock(nn.Module):
    """x -> conv-BN-ReLU -> conv-BN, plus x (projected by a 1x1 conv when the shape changes) -> ReLU."""

    expansion = 1  # output channels per unit of stage width

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))  # (B, C_out, H / s, W / s)
        out = self.bn2(self.conv2(out))  # (B, C_out, H / s, W / s)
        return torch.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """x -> 1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand x4, plus the shortcut -> ReLU."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.shortcut = shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))  # (B, width, H, W)
        out = torch.relu(self.bn2(self.conv2(out)))  # (B, width, H / s, W / s)
        out = self.bn3(self.conv3(out))  # (B, 4 * width, H / s, W / s)
        return torch.relu(out + self.shortcut(x))


class StridedPointwise(nn.Conv2d):
    """A 1x1 convolution with a stride, computed as every ``stride``-th pixel followed by a 1x1
    convolution of stride 1: the same parameters and the same outputs as ``nn.Conv2d(c_in, c_out,
    1, stride=stride)``. torch 2.14's CPU kernel for the strided 1x1 convolution on channels_last
    inputs with 8 or 12 input channels corrupts the heap in backward at even sides (64 and 80 px
    inputs crashed: "double free or corruption"); the slice avoids that kernel."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(c_in, c_out, 1, bias=False)
        self.step = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x[:, :, ::self.step, ::self.step])  # (B, C_in, ceil(H/s), ceil(W/s))


def shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Identity, or a strided 1x1 conv + BN projection when the block changes the shape."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(StridedPointwise(c_in, c_out, stride), nn.BatchNorm2d(c_out))


def stage_blocks(cfg: ResNetConfig) -> list[int]:
    """Blocks per stage: the ``depth`` preset for ``block`` when set, else ``blocks``."""
    if cfg.depth is None:
        return [int(n) for n in cfg.blocks]
    presets = DEPTHS[cfg.block]
    if cfg.depth not in presets:
        other = next(kind for kind, table in DEPTHS.items() if cfg.depth in table)
        raise NeuroclassError(f"resnet depth {cfg.depth} uses {other} blocks; set model.options.block="
                              f"{other} ({cfg.block} blocks come in depths {', '.join(map(str, presets))})")
    if list(cfg.blocks) != DEFAULT_BLOCKS:
        raise NeuroclassError("resnet: set model.options.depth or model.options.blocks, not both")
    return presets[cfg.depth]


class ResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise NeuroclassError(f"model resnet needs images (C, H, W); got input shape {input_shape}: "
                                  "for a table's feature rows use --model mlp")
        block = {"basic": BasicBlock, "bottleneck": Bottleneck}[cfg.block]
        stem_pool = cfg.stem_pool and min(input_shape[1:]) >= 2  # tiny inputs keep their pixels
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], cfg.width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cfg.width), nn.ReLU(),
                                  *([nn.MaxPool2d(2)] if stem_pool else []))
        stages, c_in = [], cfg.width
        for i, n_blocks in enumerate(stage_blocks(cfg)):
            width = cfg.width * 2**i
            for j in range(n_blocks):
                stages.append(block(c_in, width, stride=2 if (i > 0 and j == 0) else 1))
                c_in = width * block.expansion
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(c_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, width, H / 2, W / 2) with stem_pool, else (B, width, H, W)
        x = self.stages(x)  # (B, width * 2^(S-1) * expansion, H' / 2^(S-1), W' / 2^(S-1))
        return self.head(self.pool(x))  # global average pool -> (B, num_classes)


# first-stage widths by model.size, cheapest first; a time budget (model.size=auto) takes the
# largest that gets 6 epochs
SIZES = tuple((name, {"width": width}) for name, width in (("xs", 8), ("s", 12), ("m", 16), ("l", 24), ("xl", 32)))


@register_model("resnet", ResNetConfig,
                "residual basic or bottleneck blocks with BatchNorm and global average pooling",
                # features: the globally pooled last stage, (B, width * 2^(S-1) * expansion)
                head="head.2", features="head.2", feature_side="input", output="logits",
                loss=cross_entropy, sizes=SIZES, min_epochs=6)
def build_resnet(cfg: ResNetConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return ResNet(cfg, input_shape, num_classes)
