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
    """Mean cross-entropy (a scalar) of logits (B, K) against class indices (B,) int64 or soft
    targets (B, K) (rows summing to 1: mixup, cutmix), with label smoothing ``label_smoothing`` in
    [0, 1) (Szegedy et al. 2016, "Rethinking the Inception Architecture", section 7: the target
    puts 1 - e + e / K on the true class and e / K on each class).

    ``weight`` (K,): per-class weights (train.class_weight). Each example's smoothed loss counts
    with the weight of its TRUE class, w[y_i], and the batch's loss is the weighted mean
    sum_i w[y_i] L_i / sum_i w[y_i]. A soft target t_i mixes true classes, so its loss is the same
    mix of each class's weighted smoothed loss, sum_k t_ik w_k L_i(k), over sum_i sum_k t_ik w_k.
    With smoothing 0 and class indices this is torch's ``F.cross_entropy(weight=w)``, and with
    all weights 1 it is the unweighted smoothed loss (for soft targets too; torch's weighted loss
    on soft targets divides by B instead, which would change the scale between hard and mixed
    batches). It is not torch's ``F.cross_entropy(weight=w,
    label_smoothing=e)``, which also weighs each class's smoothing term by that class's weight
    (torch.nn.CrossEntropyLoss documentation, "weight" and "label_smoothing"): with balanced
    weights the e / K put on a rare class counts w_rare / w_common times (~20x at 95:5) on every
    common example, which pulls the common examples towards the rare class.

    >>> round(cross_entropy(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).item(), 4)
    0.6931
    >>> rare_weighted = torch.tensor([1.0, 20.0])
    >>> round(cross_entropy(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), 0.1, rare_weighted).item(), 4)
    0.2269
    """
    if weight is None:
        return F.cross_entropy(output, target, label_smoothing=label_smoothing)
    # (B, K), in float32 at least: half-precision logits under autocast would lose the small terms
    log_p = F.log_softmax(output.to(torch.promote_types(output.dtype, torch.float32)), dim=1)
    k = log_p.shape[1]
    t = target.to(log_p.dtype) if target.ndim == 2 else F.one_hot(target, k).to(log_p.dtype)  # (B, K)
    tw = t * weight.to(log_p.dtype)  # (B, K): each true class's share times its weight
    example_weight = tw.sum(1)  # (B,) w[y_i] for class indices
    true_term = -(tw * log_p).sum(1)  # (B,) weighted -log p of the true class(es)
    uniform_term = -log_p.mean(1)  # (B,) cross-entropy against the uniform target, unweighted
    per_example = (1 - label_smoothing) * true_term + label_smoothing * example_weight * uniform_term
    return per_example.sum() / example_weight.sum()


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
