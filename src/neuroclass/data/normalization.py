"""Input statistics of the training split, which a model's Standardize layer stores."""
from __future__ import annotations

import torch


def normalization_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (1, C, 1, 1) of uint8 images (N, C, H, W) in [0, 1] units, or
    per-feature (1, D) of float rows (N, D); a constant input gets std 1 (left unscaled).

    >>> mean, std = normalization_stats(torch.full((2, 1, 2, 2), 255, dtype=torch.uint8))
    >>> mean.flatten().tolist(), std.flatten().tolist()
    ([1.0], [1.0])
    """
    if x.dtype == torch.uint8:
        xf = x.float().div_(255.0)
        dims = [0, 2, 3]
        mean, std = xf.mean(dim=dims, keepdim=True), xf.std(dim=dims, keepdim=True)
    else:
        mean, std = x.mean(dim=0, keepdim=True), x.std(dim=0, keepdim=True)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant inputs: leave unscaled
    return mean, std


def leave_unscaled(mean: torch.Tensor, std: torch.Tensor, columns: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature ``mean``/``std`` (1, D) with the features at ``columns`` set to 0 and 1, so that
    the model's standardization passes them as they are (0/1 indicators: a rare 1 would otherwise
    land many standard deviations out). The tensors given are not changed.

    >>> mean, std = leave_unscaled(torch.tensor([[5.0, 0.01]]), torch.tensor([[2.0, 0.1]]), [1])
    >>> mean.tolist(), std.tolist()
    ([[5.0, 0.0]], [[2.0, 1.0]])
    """
    if not columns:
        return mean, std
    mean, std = mean.clone(), std.clone()
    mean[..., columns], std[..., columns] = 0.0, 1.0
    return mean, std
