"""mlp: a multilayer perceptron. Images are flattened (28x28 -> 784 inputs)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from neuroclass.config import rule
from neuroclass.models.layers import activation, cross_entropy
from neuroclass.models.registry import register_model


@dataclass(frozen=True)
class MLPConfig:
    # units per hidden layer; [] is a linear model
    hidden: list[int] = field(default_factory=lambda: [512, 256], metadata=rule(gt=0))
    activation: str = field(default="relu",
                            metadata=rule(choices=("relu", "sigmoid", "tanh", "gelu", "leaky_relu", "silu")))
    dropout: float = field(default=0.2, metadata=rule(ge=0, lt=1))
    batch_norm: bool = True


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for units in cfg.hidden:
            layers.append(nn.Linear(width, int(units)))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(int(units)))
            layers.append(activation(cfg.activation))
            if cfg.dropout:
                layers.append(nn.Dropout(cfg.dropout))
            width = int(units)
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, ...) -> (B, D) -> (B, num_classes)


# hidden units by model.size, cheapest first; a fully connected net needs many passes over the data,
# so a time budget (model.size=auto) takes the largest size that still gets 15 epochs
SIZES = (("s", {"hidden": [256, 128]}),
         ("m", {"hidden": [512, 256]}),
         ("l", {"hidden": [1024, 512]}),
         ("xl", {"hidden": [2048, 1024]}))


def mlp_head(net: MLP) -> str:
    """The final Linear, the last of ``layers`` (how many come before it depends on the options)."""
    return f"layers.{len(net.layers) - 1}"


# features: the last hidden layer's activations (after dropout), (B, hidden[-1]); the flattened
# input when there is no hidden layer
@register_model("mlp", MLPConfig, "fully connected layers: Linear -> [BatchNorm] -> activation -> Dropout",
                head=mlp_head, features=mlp_head, feature_side="input", output="logits",
                loss=cross_entropy, sizes=SIZES, min_epochs=15)
def build_mlp(cfg: MLPConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return MLP(cfg, input_shape, num_classes)
