"""Building blocks shared by model families: activations, weight initialisation, input scaling."""
from __future__ import annotations

import torch
from torch import nn

from neuroclass.errors import NeuroclassError

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU,
               "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise NeuroclassError(f"unknown activation '{name}'; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def init_weights(model: nn.Module, scheme: str) -> None:
    """'he' (Kaiming normal, fan-in, for ReLU), 'xavier' (Glorot uniform), or PyTorch's 'default'."""
    if scheme == "default":
        return
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            if scheme == "he":
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif scheme == "xavier":
                nn.init.xavier_uniform_(module.weight)
            else:
                raise NeuroclassError(f"unknown init '{scheme}'; choose default, he or xavier")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class Standardize(nn.Module):
    """Raw input -> standardized float: uint8 images are scaled to [0, 1] first.

    mean/std are buffers (saved with the weights) of shape (1, C, 1, 1) for images or (1, D) rows.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone().float())
        self.register_buffer("std", std.clone().float().clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """The trained artifact: input standardization followed by a network that outputs logits."""

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.standardize = Standardize(mean, std)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardize(x))  # (B, num_classes) logits

    def output_logits(self, output: torch.Tensor) -> torch.Tensor:
        """The network's output (B, K) as logits."""
        return output
