"""resnet: residual networks of basic blocks (two 3x3 convs + identity shortcut), global average pooling."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from neuroclass.config import rule
from neuroclass.errors import NeuroclassError
from neuroclass.models.registry import register_model


@dataclass(frozen=True)
class ResNetConfig:
    width: int = field(default=32, metadata=rule(gt=0))  # channels of the first stage; doubles per stage
    blocks: list = field(default_factory=lambda: [1, 1, 1])  # basic blocks per stage
    dropout: float = field(default=0.0, metadata=rule(ge=0, lt=1))  # before the classifier


class BasicBlock(nn.Module):
    """x -> conv-BN-ReLU -> conv-BN, plus x (projected by a 1x1 conv when the shape changes) -> ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))  # (B, C_out, H / s, W / s)
        out = self.bn2(self.conv2(out))  # (B, C_out, H / s, W / s)
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise NeuroclassError(f"model resnet needs images (C, H, W); got input shape {input_shape}")
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], cfg.width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cfg.width), nn.ReLU())
        stages, c_in = [], cfg.width
        for i, n_blocks in enumerate(cfg.blocks):
            c_out = cfg.width * 2**i
            for j in range(int(n_blocks)):
                stages.append(BasicBlock(c_in, c_out, stride=2 if (i > 0 and j == 0) else 1))
                c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(c_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, W, H, W)
        x = self.stages(x)  # (B, W * 2^(S-1), H / 2^(S-1), W / 2^(S-1))
        return self.head(self.pool(x))  # global average pool -> (B, num_classes)


@register_model("resnet", ResNetConfig, "residual basic blocks with BatchNorm and global average pooling")
def build_resnet(cfg: ResNetConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return ResNet(cfg, input_shape, num_classes)
