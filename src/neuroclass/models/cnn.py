"""cnn: LeNet-style convolution -> pooling stages, then fully connected layers."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from neuroclass.config import rule
from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import activation, cross_entropy
from neuroclass.models.registry import register_model


@dataclass(frozen=True)
class CNNConfig:
    # Defaults chosen by measured accuracy per CPU-second on Fashion-MNIST (2 cores): three narrow
    # stages reach 92% in 8 epochs at ~1600 images/s; [32, 64] x 2 convs costs 6x more per image.
    # conv width of each stage
    channels: list[int] = field(default_factory=lambda: [16, 32, 64], metadata=rule(gt=0, min_items=1))
    convs_per_stage: int = field(default=1, metadata=rule(gt=0))  # 3x3 convs before each pool
    hidden: int = field(default=128, metadata=rule(ge=0))  # fully connected units; 0 = none
    activation: str = field(default="relu", metadata=rule(choices=("relu", "gelu", "silu", "tanh")))
    batch_norm: bool = True
    # 0: with averaged weights (train.ema) and label smoothing, dropout 0.1 slowed the first epochs
    # (Fashion-MNIST, batch 128: 90.9% vs 91.1% after 2 epochs); all 8 epochs without it: 92.5%
    dropout: float = field(default=0.0, metadata=rule(ge=0, lt=1))
    # conv -> pool -> BN -> ReLU: max pooling commutes with ReLU, so pooling first runs BatchNorm
    # and the activation on a quarter of the pixels; measured 1.17x faster training on 2 CPU cores,
    # where those memory-bound ops took ~40% of a step. False gives the textbook conv-BN-ReLU-pool.
    pool_first: bool = True
    # 3x3 convs of the same width after each stage's pooling, at a quarter of the pixels
    pooled_convs: int = field(default=0, metadata=rule(ge=0))


class CNN(nn.Module):
    def __init__(self, cfg: CNNConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise NeuroclassError(f"model cnn needs images (C, H, W); got input shape {input_shape}: "
                                  "for a table's feature rows use --model mlp")
        c_in, h, w = input_shape

        def conv_block(c_in: int, width: int, pool_inside: bool) -> list[nn.Module]:
            """3x3 conv -> (max pool, when pooling comes first) -> BatchNorm -> activation."""
            return ([nn.Conv2d(c_in, width, 3, padding=1, bias=not cfg.batch_norm)]
                    + ([nn.MaxPool2d(2)] if pool_inside else [])
                    + ([nn.BatchNorm2d(width)] if cfg.batch_norm else []) + [activation(cfg.activation)])

        stages: list[nn.Module] = []
        for width in cfg.channels:
            pool = min(h, w) >= 2  # tiny inputs (8x8 digits) keep their last pixels
            for i in range(cfg.convs_per_stage):
                stages += conv_block(c_in, width, pool and cfg.pool_first and i == cfg.convs_per_stage - 1)
                c_in = width
            if pool:
                stages += [] if cfg.pool_first else [nn.MaxPool2d(2)]
                h, w = h // 2, w // 2
            for _ in range(cfg.pooled_convs):
                stages += conv_block(width, width, False)
        self.features = nn.Sequential(*stages)
        flat = c_in * h * w
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(cfg.dropout)]
        if cfg.hidden:
            head += [nn.Linear(flat, cfg.hidden), activation(cfg.activation), nn.Dropout(cfg.dropout)]
            flat = cfg.hidden
        head.append(nn.Linear(flat, num_classes))
        self.head = nn.Sequential(*head)
        self.feature_shape = (c_in, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C, H, W) -> (B, C_last, H / 2^stages, W / 2^stages)
        return self.head(x)  # (B, num_classes)


# sizes by model.size, cheapest first; with a time budget, model.size=auto takes the largest that
# gets 5 epochs. Measured on Fashion-MNIST (2 CPU cores, test accuracy): in 3 minutes m (6 epochs)
# reached 92.5% where s for 10 epochs reached 92.1%, and [16, 32, 64] with pooled_convs (7-8
# epochs) 92.4%. l adds a conv after each pooling, depth at a quarter of the pixels: in 10 minutes
# with flips it reached 93.8%, [32, 64, 128] without it 93.7% at the same speed. The ladder stops
# there: with flips, l for 4 epochs in 3 minutes reached 92.5% where m for 6 reached 93.0%, and a
# larger net would get about 7 epochs in 10 minutes, too few for shifts (augment.auto)
SIZES = (("s", {"channels": [16, 32, 64], "pooled_convs": 0}),
         ("m", {"channels": [24, 48, 96], "pooled_convs": 0}),
         ("l", {"channels": [24, 48, 96], "pooled_convs": 1}))


def cnn_head(net: CNN) -> str:
    """The final Linear, the last of ``head`` (after the hidden layer when ``hidden`` > 0)."""
    return f"head.{len(net.head) - 1}"


# features: the hidden layer's activations (B, hidden), or the flattened last stage
# (B, C * H * W) when hidden is 0
@register_model("cnn", CNNConfig, "conv 3x3 -> BatchNorm -> ReLU stages with max pooling, then FC",
                head=cnn_head, features=cnn_head, feature_side="input", output="logits",
                loss=cross_entropy, sizes=SIZES, min_epochs=5)
def build_cnn(cfg: CNNConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return CNN(cfg, input_shape, num_classes)

