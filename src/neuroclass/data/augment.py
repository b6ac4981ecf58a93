"""Batched image augmentation with per-sample random parameters, on the batch's own device.

One affine warp per batch (``F.affine_grid`` + ``F.grid_sample``) applies each sample's own
rotation, zoom, translation and horizontal flip, so a batch costs one kernel, not B PIL calls.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neuroclass.config import AugmentConfig


def random_affine(n: int, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) affine matrices in normalized coordinates, one random draw per sample."""
    u = torch.rand(n, 4, generator=generator) * 2 - 1  # (n, 4) uniform in [-1, 1]
    angle = u[:, 0] * math.radians(cfg.rotation)
    scale = 1.0 + u[:, 1] * cfg.zoom
    shift = u[:, 2:] * 2 * cfg.translate  # normalized coordinates span 2 units
    flip = torch.ones(n)
    if cfg.flip:
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
                         torch.stack([sin * flip, cos, shift[:, 1]], dim=1)], dim=1)
    return theta  # (n, 2, 3)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Float images (B, C, H, W) -> the same shape, each sample warped by its own random affine.

    >>> g = torch.Generator().manual_seed(0)
    >>> augment_batch(torch.rand(8, 1, 28, 28), AugmentConfig(enabled=True), g).shape
    torch.Size([8, 1, 28, 28])
    """
    theta = random_affine(x.shape[0], cfg, generator).to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
