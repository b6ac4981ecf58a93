"""Optimizers (sgd, adam, adamw, rmsprop) and learning-rate schedules as functions of progress.

A schedule maps training progress p in [0, 1] to a multiplier of the peak rate. Progress is the
fraction of the planned steps done once the coming step ends (TrainState.progress): of every
epoch's steps or, under a time budget, of the steps that fit before the end of training that also
stops it, so the last step runs at the schedule's end whether the run ends by epochs or by the clock.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from neuroclass.config import OptimConfig
from neuroclass.device import fused_optimizer

# Learned embeddings are not weight matrices: decaying a transformer's position embedding or class
# token towards zero erases what they encode (the usual ViT recipe exempts them too).
NO_DECAY_NAMES = ("pos_embed", "cls_token")


def decays(name: str, param: torch.Tensor) -> bool:
    """Whether weight decay applies to parameter ``name``: weight matrices and kernels, not
    biases, normalization scales or embeddings named in NO_DECAY_NAMES.

    >>> decays("net.blocks.0.weight", torch.zeros(3, 3)), decays("net.pos_embed", torch.zeros(1, 5, 8))
    (True, False)
    """
    return param.ndim >= 2 and name.rsplit(".", 1)[-1] not in NO_DECAY_NAMES


def param_groups(model: nn.Module, weight_decay: float,
                 lr_scales: dict[str, float] | None = None) -> list[dict]:
    """Weight decay on weight matrices and kernels only, not on biases or normalization scales.

    ``lr_scales`` (parameter name -> multiplier of the rate, e.g. discriminative fine-tuning rates)
    splits the groups further; each group keeps its multiplier as "lr_scale" for ``set_lr``.
    """
    if lr_scales is None:
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if param.requires_grad:
                (decay if decays(name, param) else no_decay).append(param)
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]
    groups: dict[tuple[bool, float], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((decays(name, param), lr_scales.get(name, 1.0)), []).append(param)
    return [{"params": params, "weight_decay": weight_decay if decay else 0.0, "lr_scale": scale}
            for (decay, scale), params in groups.items()]


def make_optimizer(model: nn.Module, cfg: OptimConfig,
                   lr_scales: dict[str, float] | None = None) -> torch.optim.Optimizer:
    """>>> opt = make_optimizer(nn.Linear(4, 2), OptimConfig(name="sgd", lr=0.1))"""
    groups = param_groups(model, cfg.weight_decay, lr_scales)
    for group in groups:
        group["lr"] = cfg.lr * group.get("lr_scale", 1.0)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    # None, not False, where no fused kernel fits: PyTorch then picks its own (foreach on CUDA)
    fused = fused_optimizer([p for group in groups for p in group["params"]]) or None
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, fused=fused)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused)
    return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)


def lr_factor(cfg: OptimConfig, progress: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` in [0, 1].

    >>> round(lr_factor(OptimConfig(schedule="cosine", warmup=0.0), 0.5), 3)
    0.5
    """
    p = min(max(progress, 0.0), 1.0)
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** math.floor(p / cfg.step_every)
    if cfg.warmup > 0 and p < cfg.warmup:
        return 0.04 + 0.96 * p / cfg.warmup  # linear warmup from 4% of the peak rate
    span = (p - cfg.warmup) / max(1e-12, 1.0 - cfg.warmup)
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * span))
    # onecycle: cosine annealing from the peak down to 1/1000 of it after the warmup
    return 1e-3 + (1 - 1e-3) * 0.5 * (1.0 + math.cos(math.pi * span))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the rate of every group, times the group's "lr_scale" (discriminative rates) if any."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of absolute values of weight matrices and kernels (biases and norms excluded)."""
    return sum(p.abs().sum() for p in model.parameters() if p.requires_grad and p.ndim >= 2)
