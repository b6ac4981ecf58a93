"""Building blocks shared by model families: activations, weight initialisation, input scaling, the
cross-entropy loss, and the Classifier that wraps every network with what its family declares."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuroclass.errors import NeuroclassError
from neuroclass.models.registry import LossFn, ModelFamily, OutputKind

# the smallest capsule length taken as a probability: log(1e-6) = -13.8 is a finite logit, and
# lengths this small are far below the 0.1 the margin loss pushes absent classes under
MIN_LENGTH = 1e-6

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


def cross_entropy(output: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of logits (B, K) against class indices (B,) or soft targets (B, K);
    ``weight`` (K,) weighs each class's terms (torch's ``F.cross_entropy``: with class indices the
    mean is over the weights of the batch's targets).

    >>> round(cross_entropy(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).item(), 4)
    0.6931
    """
    return F.cross_entropy(output, target, weight=weight, label_smoothing=label_smoothing)


class Classifier(nn.Module):
    """The trained artifact: input standardization followed by a network, and the declarations of
    the network's family (``family``: head, feature layer, output kind, loss).

    ``forward`` returns what the family's network returns, (B, K): logits, or capsule lengths for
    capsnet. ``output_logits`` turns either into logits; ``loss`` is the family's loss on it.
    """

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor, family: ModelFamily) -> None:
        super().__init__()
        self.standardize = Standardize(mean, std)
        self.net = net
        self.family = family  # a plain attribute: not a module, not saved with the weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardize(x))  # (B, num_classes): logits or lengths (family.output)

    @property
    def loss(self) -> LossFn:
        """The family's loss(output, target, label_smoothing) on ``forward``'s output: cross-entropy
        with label smoothing for logits, capsnet's margin loss for lengths."""
        return self.family.loss

    def output_logits(self, output: torch.Tensor) -> torch.Tensor:
        """``forward``'s output (B, K) -> logits (B, K): the tensor to divide by a temperature,
        average over test-time views, or softmax into probabilities.

        Logits pass through. Capsule lengths in [0, 1) become log(max(length, 1e-6)), so that
        softmax(logits) is the lengths normalised to sum to 1. The log is monotonic, so the argmax
        (the model's decision) is unchanged; softmax(logits / T) = length^(1/T) normalised, so a
        fitted temperature still sharpens or flattens the probabilities; averaging the logits of
        several views averages log-lengths (a geometric mean of the lengths), as averaging logits
        does for other families. A softmax of the raw lengths would instead squeeze every row
        towards uniform (at most e : 1 between two classes).

        Example::

            lengths = torch.tensor([[0.6, 0.2, 0.0]])
            capsnet.output_logits(lengths).softmax(1).round(decimals=4)
            # -> tensor([[0.7500, 0.2500, 0.0000]])
        """
        if self.family.output is OutputKind.LENGTHS:
            return output.clamp_min(MIN_LENGTH).log()
        return output
