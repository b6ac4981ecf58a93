"""inception: GoogLeNet-style blocks (Szegedy et al. 2015) sized for small images.

Each block runs four branches side by side and concatenates them: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3
(the 5x5 receptive field of the paper at 18/25 of its multiply-adds, as in Inception v2); 3x3 max-pool
-> 1x1. The 1x1 "bottlenecks" halve the channels before the costly convolutions. A 3x3 stem and one
2x2 max-pooling replace the paper's 7x7 stride-2 stem and two poolings, which would shrink a 28x28
image to 7x7 before the first block; the blocks start at 14x14.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from neuroclass.config import rule
from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import cross_entropy
from neuroclass.models.registry import register_model


@dataclass(frozen=True)
class InceptionConfig:
    width: int = field(default=16, metadata=rule(gt=0))  # channels per branch in stage 1; doubles per stage
    # inception blocks per stage; 2x2 pooling between
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1], metadata=rule(gt=0, min_items=1))
    dropout: float = field(default=0.2, metadata=rule(ge=0, lt=1))  # before the classifier
    # 2x2 max-pooling after the stem, as GoogLeNet's stem downsamples: the first blocks work on a
    # quarter of the pixels, where their many small BatchNorm/ReLU/pooling passes are memory-bound
    # on a CPU; false keeps the full grid
    stem_pool: bool = True


def conv_bn(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    """Conv (same padding, no bias: BatchNorm has one) -> BatchNorm -> ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class InceptionBlock(nn.Module):
    """Four branches of ``width`` channels each, concatenated: output has 4 * width channels."""

    def __init__(self, c_in: int, width: int) -> None:
        super().__init__()
        reduce = max(1, width // 2)  # bottleneck channels in front of the 3x3 convs
        self.branch1 = conv_bn(c_in, width, 1)
        self.branch3 = nn.Sequential(conv_bn(c_in, reduce, 1), conv_bn(reduce, width, 3))
        self.branch5 = nn.Sequential(conv_bn(c_in, reduce, 1), conv_bn(reduce, width, 3),
                                     conv_bn(width, width, 3))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv_bn(c_in, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)]
        return torch.cat(branches, dim=1)  # 4 x (B, w, H, W) -> (B, 4w, H, W)


class Inception(nn.Module):
    def __init__(self, cfg: InceptionConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise NeuroclassError(f"model inception needs images (C, H, W); got input shape {input_shape}: "
                                  "for a table's feature rows use --model mlp")
        if not cfg.blocks or min(int(n) for n in cfg.blocks) < 1:
            raise NeuroclassError(f"model.options.blocks must list >= 1 block per stage. Got {cfg.blocks}.")
        c_in = 2 * cfg.width
        stem_pool = cfg.stem_pool and min(input_shape[1:]) >= 2  # tiny inputs keep their pixels
        self.stem = nn.Sequential(conv_bn(input_shape[0], c_in, 3), *([nn.MaxPool2d(2)] if stem_pool else []))
        layers: list[nn.Module] = []
        for i, n_blocks in enumerate(cfg.blocks):
            if i > 0:  # halve the grid between stages; on a 1x1 grid this pooling keeps 1x1
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))
            for _ in range(int(n_blocks)):
                layers.append(InceptionBlock(c_in, cfg.width * 2**i))
                c_in = 4 * cfg.width * 2**i
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(c_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 2w, H / 2, W / 2) with stem_pool, else (B, 2w, H, W)
        x = self.stages(x)  # (B, 4w * 2^(S-1), (H / 2) / 2^(S-1), (W / 2) / 2^(S-1))
        return self.head(self.pool(x))  # global average pool -> (B, num_classes)


# branch widths by model.size, cheapest first; a time budget (model.size=auto) takes the largest
# that gets 6 epochs
SIZES = tuple((name, {"width": width}) for name, width in (("xs", 8), ("s", 12), ("m", 16), ("l", 24), ("xl", 32)))


@register_model("inception", InceptionConfig,
                "GoogLeNet-style blocks: 1x1 | 1x1-3x3 | 1x1-3x3-3x3 | pool-1x1 branches, concatenated",
                # features: the globally pooled last stage, (B, 4 * width * 2^(S-1))
                head="head.2", features="head.2", feature_side="input", output="logits",
                loss=cross_entropy, sizes=SIZES, min_epochs=6)
def build_inception(cfg: InceptionConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return Inception(cfg, input_shape, num_classes)
