"""Arrays of an explanation as small PNG data URIs: heat maps (signed values in blue and red,
feature maps from dark to bright), weight templates and filters, attribution maps over the
image. Colours come from matplotlib's colour maps; the PNGs from the report's ``image_uri``.

Example::

    heat_uri(np.array([[-1.0, 0.0, 1.0]]), signed=True)[:22]
    # -> 'data:image/png;base64,'
"""
from __future__ import annotations

import numpy as np

from neuroclass.evaluation.report.plots import image_uri

SIGNED, UNSIGNED = "RdBu_r", "viridis"  # negative blue, positive red; dark low, bright high


def colours(values: np.ndarray, signed: bool) -> np.ndarray:
    """(H, W) numbers -> (3, H, W) uint8 colours: ``signed`` maps -m..m (m the largest |value|)
    with 0 white; otherwise the range min..max from dark to bright. A constant map is one colour.

    >>> colours(np.array([[-2.0, 0.0, 2.0]]), True)[:, 0, 1].tolist()  # 0 is near white
    [247, 246, 246]
    """
    from matplotlib import colormaps

    v = np.asarray(values, dtype=np.float64)
    if signed:
        m = float(np.abs(v).max()) or 1.0
        scaled = (v / m + 1.0) / 2.0
    else:
        lo, hi = float(v.min()), float(v.max())
        scaled = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    rgb = colormaps[SIGNED if signed else UNSIGNED](np.clip(scaled, 0.0, 1.0))[..., :3]  # (H, W, 3)
    return np.round(255 * rgb).astype(np.uint8).transpose(2, 0, 1)


def heat_uri(values: np.ndarray, signed: bool) -> str:
    """A map (H, W) as a PNG URI in its own size (the page scales it up, pixels crisp)."""
    return image_uri(colours(values, signed), max(values.shape))


def picture_uri(image: np.ndarray) -> str:
    """An input image (C, H, W) uint8 as a PNG URI in its own size."""
    return image_uri(image, max(image.shape[1:]))


def signed_picture_uri(values: np.ndarray) -> str:
    """A (C, H, W) array of signed numbers (a weight template, a filter, an input's numbers): one
    channel in blue and red; three channels as colours, each scaled to 0..255 by the largest |value|
    around mid grey; other channel counts summed to one channel."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape[0] == 3:
        m = float(np.abs(v).max()) or 1.0
        return image_uri(np.round(127.5 + 127.5 * v / m).astype(np.uint8), max(v.shape[1:]))
    return heat_uri(v[0] if v.shape[0] == 1 else v.sum(axis=0), signed=True)


def overlay_uri(image: np.ndarray, heat: np.ndarray, signed: bool, alpha: float = 0.55) -> str:
    """A heat map (H, W) laid over the grey version of ``image`` (C, H, W) uint8."""
    grey = image.astype(np.float64).mean(axis=0)  # (H, W)
    blended = (1 - alpha) * grey[None] + alpha * colours(heat, signed).astype(np.float64)
    return image_uri(np.round(blended).astype(np.uint8), max(image.shape[1:]))


def strongest_channels(maps: np.ndarray, count: int = 12) -> list[int]:
    """The ``count`` channels of ``maps`` (C, h, w) with the largest mean, largest first."""
    return [int(i) for i in np.argsort(-maps.reshape(maps.shape[0], -1).mean(axis=1), kind="stable")[:count]]
