"""capsnet: a capsule network with dynamic routing (Sabour, Frosst and Hinton 2017), sized for 28x28.

A capsule is a vector whose length says how likely an entity is present and whose direction
describes it. conv 9x9 -> primary capsules (a 9x9 stride-2 conv whose channels group into 8-D
vectors, one capsule per map and position) -> one 16-D capsule per class; each primary capsule
predicts every class capsule through its own matrix, and 3 rounds of routing-by-agreement send its
vote to the class capsules that agree with it. The output is the class capsule lengths in [0, 1)
(the family declares ``output="lengths"``), trained with the margin loss (``margin_loss``, the loss
the family declares). Probabilities come from ``Classifier.output_logits``, log(length): softmax of
those is the lengths normalised to sum to 1, and a temperature fitted on them still calibrates.

The paper's reconstruction decoder is left out: its loss needs the input image, which a family's
declared loss does not get. Inputs smaller than 17x17 (what the two 9x9 convs need) are zero-padded,
which after standardization is padding with the training mean.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from neuroclass.config import rule
from neuroclass.errors import NeuroclassError
from neuroclass.models.registry import register_model

MIN_SIDE = 17  # conv 9x9 (valid) leaves side - 8; the 9x9 stride-2 primary conv needs 9 of those


@dataclass(frozen=True)
class CapsNetConfig:
    conv_channels: int = field(default=64, metadata=rule(gt=0))  # the paper's 256 costs ~16x more
    primary_maps: int = field(default=8, metadata=rule(gt=0))  # primary capsule maps (paper: 32)
    primary_dim: int = field(default=8, metadata=rule(gt=0))  # features per primary capsule
    class_dim: int = field(default=16, metadata=rule(gt=0))  # features per class capsule
    routing: int = field(default=3, metadata=rule(gt=0))  # routing-by-agreement iterations


def squash(s: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shrink a vector's length into [0, 1), keeping its direction: |s|^2 / (1 + |s|^2) * s / |s|."""
    norm2 = (s * s).sum(dim, keepdim=True)
    return norm2 / (1 + norm2) * s / torch.sqrt(norm2 + 1e-8)


class CapsNet(nn.Module):
    def __init__(self, cfg: CapsNetConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise NeuroclassError(f"model capsnet needs images (C, H, W); got input shape {input_shape}: "
                                  "for a table's feature rows use --model mlp")
        c, h, w = input_shape
        h, w = max(h, MIN_SIDE), max(w, MIN_SIDE)
        self.routing, self.primary_dim = cfg.routing, cfg.primary_dim
        self.conv = nn.Conv2d(c, cfg.conv_channels, 9)
        self.primary = nn.Conv2d(cfg.conv_channels, cfg.primary_maps * cfg.primary_dim, 9, stride=2)
        grid = ((h - 8 - 9) // 2 + 1) * ((w - 8 - 9) // 2 + 1)
        n_primary = cfg.primary_maps * grid
        # one (class_dim x primary_dim) transform per (primary capsule, class) pair; small at first,
        # so that the first votes are weak and every class length starts near 0
        shape = (n_primary, num_classes, cfg.class_dim, cfg.primary_dim)
        self.transform = nn.Parameter(0.05 * torch.randn(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = max(0, MIN_SIDE - x.shape[2]), max(0, MIN_SIDE - x.shape[3])
        if pad_h or pad_w:  # centred
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))  # (B, C, 17+, 17+)
        x = torch.relu(self.conv(x))  # (B, F, H - 8, W - 8)
        u = self.primary(x)  # (B, M * d, h, w) with h = (H - 17) // 2 + 1
        b, _, gh, gw = u.shape
        u = u.reshape(b, -1, self.primary_dim, gh, gw).permute(0, 1, 3, 4, 2)  # (B, M, h, w, d)
        u = squash(u.reshape(b, -1, self.primary_dim))  # (B, N, d): N = M * h * w primary capsules
        u_hat = torch.einsum("nkod,bnd->bnko", self.transform, u)  # (B, N, K, D) votes for each class
        log_priors = u.new_zeros(u_hat.shape[:3])  # (B, N, K) routing log priors, start uniform
        for i in range(self.routing):
            coupling = log_priors.softmax(dim=2)  # (B, N, K): each capsule splits its vote over classes
            v = squash((coupling.unsqueeze(-1) * u_hat).sum(dim=1))  # (B, K, D) class capsules
            if i < self.routing - 1:
                # (B, N, K): agreement is the dot product of a vote and the class capsule
                log_priors = log_priors + (u_hat * v.unsqueeze(1)).sum(-1)
        return torch.sqrt((v * v).sum(-1) + 1e-8)  # (B, K) capsule lengths in [0, 1)


def margin_loss(lengths: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0,
                weight: torch.Tensor | None = None) -> torch.Tensor:
    """Margin loss: sum over classes of T max(0, 0.9 - |v|)^2 + 0.5 (1 - T) max(0, |v| - 0.1)^2.

    ``lengths``: (B, K) capsule lengths; ``target``: class indices (B,) or soft targets (B, K)
    (mixup, cutmix); mean over the batch, a scalar; with ``weight`` (K,) each example counts with
    the weight of its true class (target-weighted for soft targets; label smoothing leaves it
    alone), a weighted mean as cross-entropy's.

    >>> margin_loss(torch.tensor([[0.95, 0.05]]), torch.tensor([0]))
    tensor(0.)
    """
    k = lengths.shape[1]
    true = (target if target.ndim == 2 else F.one_hot(target, k)).to(lengths.dtype)  # (B, K)
    t = true * (1 - label_smoothing) + label_smoothing / k  # smoothed as cross-entropy does
    present = t * torch.relu(0.9 - lengths) ** 2  # (B, K)
    # down-weighting absent classes by 0.5 stops them shrinking every length early in training
    absent = 0.5 * (1 - t) * torch.relu(lengths - 0.1) ** 2  # (B, K)
    per_example = (present + absent).sum(1)  # (B,)
    if weight is None:
        return per_example.mean()
    # (B,) the weight of the true class (of the mix, for soft targets), not of the smoothed target
    example_weight = (true * weight.to(lengths.dtype)).sum(1) / true.sum(1)
    return (per_example * example_weight).sum() / example_weight.sum()


# sizes, cheapest first (the paper's 256 channels and 32 primary maps cost far more than any)
SIZES = (("s", {"conv_channels": 32, "primary_maps": 4}),
         ("m", {"conv_channels": 64, "primary_maps": 8}),
         ("l", {"conv_channels": 128, "primary_maps": 16}))


@register_model("capsnet", CapsNetConfig,
                "capsule network: conv -> primary capsules -> class capsules by dynamic routing, margin loss",
                # the head is the class-capsule transforms, one (class_dim x primary_dim) matrix per
                # (primary capsule, class): a parameter of the network itself. Features: the primary
                # capsules' conv output, flattened to (B, primary_maps * primary_dim * h * w)
                head="transform", features="primary", feature_side="output", output="lengths",
                loss=margin_loss, sizes=SIZES, min_epochs=5)
def build_capsnet(cfg: CapsNetConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return CapsNet(cfg, input_shape, num_classes)
