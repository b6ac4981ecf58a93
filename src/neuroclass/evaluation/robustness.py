"""Robustness curves: test accuracy under growing noise, rotation, blur and brightness change, and
the gain of flip test-time augmentation.

Every corruption is a real torchvision op (``transforms.v2.functional``) applied to whole batches of
float images in [0, 1]; the level that changes nothing (noise 0, 0 degrees, blur 0, brightness 1)
is scored on the unchanged images, so it equals the plain accuracy exactly.

The model is reached only through ``predict_logits_fn(x) -> logits``, where x is a CPU float32
tensor (B, C, H, W) with pixels in [0, 1] and B <= BATCH. A trained neuroclass ``Classifier`` takes
exactly that (its Standardize layer divides uint8 input by 255 and treats float input as already
scaled), so, for a model on ``device`` in eval mode:

Example::

    fn = lambda x: model(x.to(device)).float().cpu()
    curves = robustness_curves(fn, test.x, test.y)
    curves["noise"][0], curves["tta"]
    # -> ({'level': 0.0, 'accuracy': 0.91}, {'plain': 0.91, 'flip': 0.915, 'gain': 0.005})
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from neuroclass.errors import NeuroclassError

# Levels of each corruption; the first (or, for brightness, the middle) changes nothing.
NOISE_SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.3)  # std of Gaussian noise added to [0, 1] pixels
ROTATION_DEGREES = (0.0, 10.0, 20.0, 30.0, 45.0)  # counter-clockwise, bilinear, corners filled black
BLUR_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0)  # Gaussian blur std in pixels; kernel 2 * ceil(3 sigma) + 1
BRIGHTNESS_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5)  # pixels multiplied, then clipped to [0, 1]
UNITS = {"noise": "std of Gaussian noise on pixels in [0, 1]",
         "rotation": "degrees, counter-clockwise", "blur": "Gaussian blur sigma in pixels",
         "brightness": "factor multiplying every pixel (1 = unchanged)"}
BATCH = 256  # images per call of predict_logits_fn: evaluation is fastest near 256 on CPU


def _noise(x: torch.Tensor, sigma: float, noise: torch.Tensor) -> torch.Tensor:
    # a new tensor: the ops never write into the batch that every level starts from
    return (x + sigma * noise).clamp_(0.0, 1.0)


# torchvision is imported on use: the time budget prices these curves (report/costs.py) in a process
# that would otherwise not import it
def _rotate(x: torch.Tensor, degrees: float, noise: torch.Tensor) -> torch.Tensor:
    import torchvision.transforms.v2.functional as TF

    return TF.rotate(x, degrees, interpolation=TF.InterpolationMode.BILINEAR)


def _blur(x: torch.Tensor, sigma: float, noise: torch.Tensor) -> torch.Tensor:
    import torchvision.transforms.v2.functional as TF

    kernel = 2 * math.ceil(3 * sigma) + 1  # +-3 sigma holds 99.7% of the weight
    # reflect padding needs kernel // 2 < side: small images (8x8 digits) get a truncated kernel
    kernel = min(kernel, 2 * min(x.shape[-2:]) - 1)
    return TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])


def _brightness(x: torch.Tensor, factor: float, noise: torch.Tensor) -> torch.Tensor:
    import torchvision.transforms.v2.functional as TF

    if x.shape[1] in (1, 3):
        return TF.adjust_brightness(x, factor)
    # torchvision takes 1 or 3 channels; brightness acts on each channel alone, so others go one by one
    b, c, h, w = x.shape
    return TF.adjust_brightness(x.reshape(b * c, 1, h, w), factor).reshape(b, c, h, w)


# name -> (levels, the level that changes nothing, apply(x, level, noise))
CORRUPTIONS: dict[str, tuple[tuple[float, ...], float, Callable]] = {
    "noise": (NOISE_SIGMAS, 0.0, _noise),
    "rotation": (ROTATION_DEGREES, 0.0, _rotate),
    "blur": (BLUR_SIGMAS, 0.0, _blur),
    "brightness": (BRIGHTNESS_FACTORS, 1.0, _brightness),
}


def robustness_curves(predict_logits_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                      y: torch.Tensor, seed: int = 0, max_examples: int = 2000) -> dict:
    """Accuracy at each level of each corruption, and plain vs flip-TTA accuracy.

    ``x`` is uint8 (N, C, H, W), ``y`` int64 (N,). At most ``max_examples`` examples are used,
    chosen stratified by class under ``seed``; the noise comes from a generator seeded with
    ``seed`` (one draw per image, scaled for every level), so equal inputs give equal curves.
    Returns {"noise" | "rotation" | "blur" | "brightness": [{"level", "accuracy"}, ...],
    "tta": {"plain", "flip", "gain"}, "examples": n, "units": {curve: what its level means}}.
    Flip TTA averages the softmax probabilities of each image and its left-right mirror.

    Example::

        robustness_curves(lambda x: x.mean((2, 3)), images, labels)["blur"][0]
        # -> {'level': 0.0, 'accuracy': 0.5}
    """
    x, y = _check_inputs(x, y, max_examples)
    keep = _subsample(y, max_examples, seed)
    x, y = x[keep], y[keep]
    generator = torch.Generator().manual_seed(seed)
    hits = {name: [0] * len(levels) for name, (levels, _, _) in CORRUPTIONS.items()}
    plain_hits = flip_hits = 0
    for start in range(0, len(x), BATCH):
        xb = x[start:start + BATCH].float().div_(255.0)  # (B, C, H, W) in [0, 1]
        yb = y[start:start + BATCH]
        noise = torch.randn(xb.shape, generator=generator)  # one draw, scaled for every level
        plain = _logits(predict_logits_fn, xb)
        batch_plain = int((plain.argmax(1) == yb).sum())
        plain_hits += batch_plain
        mirrored = _logits(predict_logits_fn, xb.flip(-1))
        proba = (plain.softmax(1) + mirrored.softmax(1)) / 2
        flip_hits += int((proba.argmax(1) == yb).sum())
        for name, (levels, identity, apply) in CORRUPTIONS.items():
            for i, level in enumerate(levels):
                if level == identity:
                    hits[name][i] += batch_plain
                else:
                    changed = _logits(predict_logits_fn, apply(xb, level, noise))
                    hits[name][i] += int((changed.argmax(1) == yb).sum())
    n = len(y)
    curves: dict = {name: [{"level": float(level), "accuracy": hits[name][i] / n}
                           for i, level in enumerate(levels)]
                    for name, (levels, _, _) in CORRUPTIONS.items()}
    curves["tta"] = {"plain": plain_hits / n, "flip": flip_hits / n,
                     "gain": flip_hits / n - plain_hits / n}
    curves["examples"] = n
    curves["units"] = dict(UNITS)
    return curves


def _check_inputs(x, y, max_examples: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise NeuroclassError("robustness_curves: x must be a uint8 image tensor (N, C, H, W); "
                              f"got {getattr(x, 'dtype', '')} {shape}")
    y = torch.as_tensor(y)
    if y.ndim != 1 or len(y) != len(x) or len(x) == 0:
        raise NeuroclassError(f"robustness_curves: y must hold one label per image; got {len(x)} "
                              f"images and labels of shape {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise NeuroclassError(f"robustness_curves: labels must be integers; got {y.dtype}")
    if max_examples < 1:
        raise NeuroclassError(f"robustness_curves: max_examples must be >= 1. Got {max_examples} instead.")
    return x, y.long()


def _subsample(y: torch.Tensor, max_examples: int, seed: int) -> torch.Tensor:
    """Sorted positions of at most ``max_examples`` examples, stratified by class when possible."""
    index = np.arange(len(y))
    if len(y) <= max_examples:
        return torch.from_numpy(index)
    try:
        chosen, _ = train_test_split(index, train_size=max_examples, random_state=seed,
                                     stratify=y.numpy())
    except ValueError:  # a class too small to stratify (one example): a plain seeded sample
        chosen, _ = train_test_split(index, train_size=max_examples, random_state=seed)
    return torch.from_numpy(np.sort(chosen))


def _logits(predict_logits_fn: Callable, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        logits = predict_logits_fn(x)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or len(logits) != len(x):
        shape = tuple(logits.shape) if hasattr(logits, "shape") else type(logits).__name__
        raise NeuroclassError(f"robustness_curves: predict_logits_fn must return logits (N, K) "
                              f"for N = {len(x)} images; got {shape}")
    return logits.detach().float().cpu()
