"""Batched image augmentation with per-sample random parameters, on the batch's own device.

One affine warp per batch (``F.affine_grid`` + ``F.grid_sample``) applies each sample's own
rotation, zoom, translation and horizontal flip, so a batch costs one kernel, not B PIL calls;
whole-pixel shifts are one gather from a zero-padded copy of the batch.
Brightness/contrast, cutout and mixup/cutmix follow the same rule: parameters for every sample are
drawn at once on the CPU from the caller's ``torch.Generator`` (so a seed reproduces a run on any
device), moved to the batch's device, and applied with a few broadcast tensor ops.

Why not ``torchvision.transforms.v2`` (measured with torchvision 0.29): ``RandomErasing``,
``ColorJitter``, ``MixUp`` and ``CutMix`` each draw one parameter set per call, so 16 copies of one
image come out identical and a whole batch shares one mixup weight; none takes a generator (they
read the global RNG); and ``v2.functional.adjust_brightness`` rejects a per-sample factor tensor.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neuroclass.config import AugmentConfig


def random_affine(n: int, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) affine matrices in normalized coordinates (where each output pixel samples the
    input), one random draw per sample: a rotation, then a random resized crop (``cfg.crop``) or a
    zoom and translation, and a horizontal flip."""
    u = torch.rand(n, 4, generator=generator) * 2 - 1  # (n, 4) uniform in [-1, 1]
    angle = u[:, 0] * math.radians(cfg.rotation)
    if cfg.crop:
        half_w, half_h, shift = random_crop_boxes(n, cfg.crop, generator)
    else:
        half_w = half_h = 1.0 / (1.0 + u[:, 1] * cfg.zoom)
        shift = u[:, 2:] * 2 * cfg.translate  # normalized coordinates span 2 units
    flip = torch.ones(n)
    if cfg.flip:
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos * half_w * flip, -sin * half_h, shift[:, 0]], dim=1),
                         torch.stack([sin * half_w * flip, cos * half_h, shift[:, 1]], dim=1)], dim=1)
    return theta  # (n, 2, 3)


def random_crop_boxes(n: int, min_area: float, generator: torch.Generator
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random resized crop boxes (Szegedy et al. 2015; torchvision ``RandomResizedCrop``), in the
    normalized coordinates of ``F.affine_grid`` where the image spans [-1, 1]: (half width (n,),
    half height (n,), centre (n, 2) as x, y).

    Each box keeps an area share uniform in [``min_area``, 1] at an aspect ratio log-uniform in
    [3/4, 4/3]; a side that would leave the image is cut to the image's (torchvision redraws up to
    ten times, then takes a centre crop), and the centre is uniform over the places that keep the
    box inside the image.

    >>> w, h, c = random_crop_boxes(1000, 0.35, torch.Generator().manual_seed(0))
    >>> bool(((w * h) >= 0.35 - 1e-6).all()), bool((c.abs() <= 1 - torch.stack([w, h], 1) + 1e-6).all())
    (True, True)
    """
    u = torch.rand(n, 4, generator=generator)  # (n, 4) uniform in [0, 1)
    area = min_area + (1 - min_area) * u[:, 0]
    ratio = torch.exp(math.log(3 / 4) + math.log(16 / 9) * u[:, 1])  # width / height
    half_w = torch.sqrt(area * ratio).clamp(max=1.0)
    half_h = torch.sqrt(area / ratio).clamp(max=1.0)
    centre = (u[:, 2:] * 2 - 1) * (1 - torch.stack([half_w, half_h], dim=1))  # (n, 2)
    return half_w, half_h, centre


def box_mask(top: torch.Tensor, left: torch.Tensor, height: torch.Tensor, width: torch.Tensor,
             size: tuple[int, int]) -> torch.Tensor:
    """(n, 1, H, W) bool, True inside each sample's box [top, top+height) x [left, left+width).

    Bounds are per-sample (n,) tensors in pixels, fractional or not; parts outside the image are
    simply never matched, so boxes clip themselves. Built from two broadcast comparisons.

    >>> box_mask(torch.tensor([1.]), torch.tensor([2.]), torch.tensor([2.]), torch.tensor([3.]),
    ...          (4, 6)).sum().item()
    6
    """
    rows = torch.arange(size[0], device=top.device)  # (H,)
    cols = torch.arange(size[1], device=top.device)  # (W,)
    in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])  # (n, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])  # (n, W)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (n, 1, H, W)


def random_erase(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Cutout: with probability ``cfg.erase`` a sample gets one rectangle set to 0.

    Each side is a whole number of pixels, uniform in [0, erase_size * side], at a uniform position
    that keeps the rectangle inside the image. 0 is the background of the digit/clothing images we
    train on (and torchvision's default fill), so erased parts look like missing strokes, not noise.

    >>> g = torch.Generator().manual_seed(0)
    >>> random_erase(torch.ones(4, 1, 8, 8), AugmentConfig(erase=1.0), g).min().item()
    0.0
    """
    n, _, h, w = x.shape
    u = torch.rand(n, 5, generator=generator).to(x.device)  # (n, 5) uniform in [0, 1)
    height = (u[:, 0] * (math.floor(cfg.erase_size * h) + 1)).floor()  # pixels, 0..max side
    width = (u[:, 1] * (math.floor(cfg.erase_size * w) + 1)).floor()
    top = (u[:, 2] * (h - height + 1)).floor()
    left = (u[:, 3] * (w - width + 1)).floor()
    hit = (u[:, 4] < cfg.erase)[:, None, None, None]  # (n, 1, 1, 1) which samples get a cutout
    return x.masked_fill(box_mask(top, left, height, width, (h, w)) & hit, 0.0)


def random_brightness_contrast(x: torch.Tensor, cfg: AugmentConfig,
                               generator: torch.Generator) -> torch.Tensor:
    """Per-sample brightness factor in [1-b, 1+b], then contrast in [1-c, 1+c], clamped to [0, 1].

    Contrast scales each sample's distance from its own mean (over channels and pixels; torchvision
    uses the grayscale mean, equal for one channel), as ``v2.functional.adjust_contrast`` does.

    >>> g = torch.Generator().manual_seed(0)
    >>> random_brightness_contrast(torch.rand(4, 1, 8, 8), AugmentConfig(brightness=0.5), g).shape
    torch.Size([4, 1, 8, 8])
    """
    n = x.shape[0]
    u = (torch.rand(n, 2, generator=generator) * 2 - 1).to(device=x.device, dtype=x.dtype)
    brightness = (1 + u[:, 0] * cfg.brightness).view(n, 1, 1, 1)
    contrast = (1 + u[:, 1] * cfg.contrast).view(n, 1, 1, 1)
    x = (x * brightness).clamp_(0, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (n, 1, 1, 1)
    return ((x - mean) * contrast + mean).clamp_(0, 1)


def random_saturation(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Per-sample saturation factor in [1-s, 1+s] for RGB images (B, 3, H, W): each pixel moved away
    from (or toward) its own gray, the ITU-R 601-2 luma that ``v2.functional.adjust_saturation``
    blends with; clamped to [0, 1]. Images of other channel counts come back unchanged.

    >>> g = torch.Generator().manual_seed(0)
    >>> gray = torch.full((2, 3, 4, 4), 0.5)
    >>> bool(torch.equal(random_saturation(gray, 0.5, g), gray))  # gray stays gray
    True
    """
    n = x.shape[0]
    factor = (1 + (torch.rand(n, generator=generator) * 2 - 1) * strength).to(x.device, x.dtype)
    if x.shape[1] != 3:
        return x
    luma = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    gray = (x * luma).sum(dim=1, keepdim=True)  # (B, 1, H, W)
    return ((x - gray) * factor.view(n, 1, 1, 1) + gray).clamp_(0, 1)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each sample moved by its own whole number of pixels in [-max_shift, max_shift] along each
    axis, the uncovered border filled with 0: a random crop of the zero-padded image. Unlike a
    sub-pixel translation (``translate``) nothing is resampled, so strokes and edges stay sharp.

    >>> g = torch.Generator().manual_seed(0)
    >>> random_shift(torch.ones(4, 1, 8, 8), 2, g).amax(dim=(1, 2, 3)).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    n, _, h, w = x.shape
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).to(x.device)  # (n, 2)
    padded = F.pad(x, (max_shift, max_shift, max_shift, max_shift))  # (n, C, H + 2s, W + 2s)
    rows = torch.arange(h, device=x.device) + max_shift - shift[:, :1]  # (n, H) source rows
    cols = torch.arange(w, device=x.device) + max_shift - shift[:, 1:]  # (n, W) source columns
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (n, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Float images (B, C, H, W) in [0, 1] -> the same shape: warp (rotation, random resized crop or
    zoom and translation, flip) or flip alone, whole-pixel shift, brightness/contrast, saturation,
    cutout.

    Labels are unchanged by all of these; ops with zero strength are skipped (and draw nothing).

    >>> g = torch.Generator().manual_seed(0)
    >>> augment_batch(torch.rand(8, 1, 28, 28), AugmentConfig(enabled=True), g).shape
    torch.Size([8, 1, 28, 28])
    """
    if cfg.rotation or cfg.zoom or cfg.translate or cfg.crop:
        theta = random_affine(x.shape[0], cfg, generator).to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    elif cfg.flip:  # flips alone: an exact mirror, no resampling
        flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if cfg.shift:
        x = random_shift(x, cfg.shift, generator)
    if cfg.brightness or cfg.contrast:
        x = random_brightness_contrast(x, cfg, generator)
    if cfg.saturation:
        x = random_saturation(x, cfg.saturation, generator)
    if cfg.erase:
        x = random_erase(x, cfg, generator)
    return x


def sample_beta(alpha: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n,) draws from Beta(alpha, alpha), reproducible from ``generator``.

    ``torch.distributions.Beta`` takes no generator: it samples Gamma variates from the global CPU
    generator. So we draw a seed from ``generator`` and sample under ``fork_rng``, which restores
    the global state afterwards (dropout's stream is untouched); ``devices=[]`` forks only the CPU
    generator, which is the only one a CPU-side draw uses.

    >>> sample_beta(0.4, 3, torch.Generator().manual_seed(0)).shape
    torch.Size([3])
    """
    seed = int(torch.randint(2**62, (), generator=generator))
    concentration = torch.tensor(float(alpha))
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        # callers pass alpha > 0 (config checks >= 0, mix_batch skips 0); validation costs ~0.7 ms
        beta = torch.distributions.Beta(concentration, concentration, validate_args=False)
        return beta.sample((n,))


def cutmix_mask(lam: torch.Tensor, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """(n, 1, H, W) bool boxes covering about 1 - lam of each image, centred uniformly, clipped."""
    h, w = size
    centre = torch.rand(len(lam), 2, generator=generator).to(lam.device) * lam.new_tensor([h, w])
    side = (1 - lam).sqrt()  # fraction of each side, so the area fraction is 1 - lam
    return box_mask(centre[:, 0] - side * h / 2, centre[:, 1] - side * w / 2, side * h, side * w, size)


def mix_batch(x: torch.Tensor, y: torch.Tensor, num_classes: int, cfg: AugmentConfig,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or cutmix with a per-sample weight: images (B, C, H, W) and soft targets (B, K).

    Sample i is mixed with sample perm[i] of a random permutation, keeping a fraction lam_i of its
    own image (lam_i ~ Beta(alpha, alpha)); its target puts lam_i on y[i] and 1 - lam_i on
    y[perm[i]]. For cutmix lam_i is the pixel fraction actually kept after the box is clipped. With
    both alphas set, one of the two is chosen per batch with probability 1/2; with neither, the
    images come back unchanged with one-hot targets.

    >>> g = torch.Generator().manual_seed(0)
    >>> xm, ys = mix_batch(torch.rand(8, 1, 28, 28), torch.arange(8) % 4, 4, AugmentConfig(mixup=0.4), g)
    >>> ys.shape, bool(torch.allclose(ys.sum(1), torch.ones(8)))
    (torch.Size([8, 4]), True)
    """
    target = F.one_hot(y, num_classes).to(x.dtype)  # (B, K)
    if not (cfg.mixup or cfg.cutmix):
        return x, target
    use_cutmix = bool(cfg.cutmix) and (not cfg.mixup or bool(torch.rand((), generator=generator) < 0.5))
    lam = sample_beta(cfg.cutmix if use_cutmix else cfg.mixup, len(y), generator)
    lam = lam.to(device=x.device, dtype=x.dtype)  # (B,) weight of each sample's own image
    # A random permutation, not torchvision's roll(1), so pairs do not depend on batch order.
    perm = torch.randperm(len(y), generator=generator).to(x.device)
    if use_cutmix:
        pasted = cutmix_mask(lam, tuple(x.shape[-2:]), generator)  # (B, 1, H, W)
        x = torch.where(pasted, x[perm], x)
        lam = 1 - pasted.to(x.dtype).mean(dim=(1, 2, 3))
    else:
        keep = lam.view(-1, 1, 1, 1)
        x = keep * x + (1 - keep) * x[perm]
    return x, lam[:, None] * target + (1 - lam[:, None]) * target[perm]
