"""Hand-made image features for the classical families: histograms of oriented gradients (HOG) and
of local binary patterns (LBP), computed by scikit-image on the gray image.

- HOG (Dalal & Triggs 2005, ``skimage.feature.hog``): gradient orientations in ``orientations``
  bins per cell of ``cell`` x ``cell`` pixels, normalised (L2-Hys) over blocks of ``block`` x
  ``block`` cells. At 28x28 with the defaults: 7x7 cells, 6x6 blocks, 6*6*2*2*9 = 1296 features.
- LBP (Ojala et al. 2002, ``skimage.feature.local_binary_pattern``, method "uniform"): each pixel's
  pattern of ``lbp_points`` neighbours at radius ``lbp_radius``, as one of lbp_points + 2 codes,
  counted in a ``lbp_grid`` x ``lbp_grid`` grid of cells and divided by the cell's pixel count.
  Defaults: 4x4 cells * 10 codes = 160 features.

Colour images are turned gray first (``skimage.color.rgb2gray``, ITU-R 709 luma). The features are
a deterministic function of the pixels and the options.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from neuroclass.errors import NeuroclassError
from neuroclass.rules import build_dataclass, rule

KINDS = ("hog", "lbp", "hog+lbp")


@dataclass(frozen=True)
class FeatureOptions:
    orientations: int = field(default=9, metadata=rule(ge=2))  # HOG orientation bins over 0-180 degrees
    cell: int = field(default=4, metadata=rule(gt=0))  # HOG cell side, pixels
    block: int = field(default=2, metadata=rule(gt=0))  # HOG block side, cells
    lbp_points: int = field(default=8, metadata=rule(ge=4))  # LBP neighbours on the circle
    lbp_radius: float = field(default=1.0, metadata=rule(gt=0))  # LBP circle radius, pixels
    lbp_grid: int = field(default=4, metadata=rule(gt=0))  # LBP histograms over grid x grid cells


def feature_options(values: Mapping[str, Any] | FeatureOptions | None,
                    prefix: str = "features.") -> FeatureOptions:
    """FeatureOptions from a mapping (checked like any config section: ``prefix`` names it in
    messages), from FeatureOptions, or the defaults for None. Raises NeuroclassError."""
    if values is None:
        return FeatureOptions()
    if isinstance(values, FeatureOptions):
        return values
    return build_dataclass(FeatureOptions, dict(values), prefix)


def image_features(x: Any, kind: str, options: Mapping[str, Any] | FeatureOptions | None = None
                   ) -> np.ndarray:
    """Features of uint8 images ``x`` (N, C, H, W), C 1 or 3, a NumPy array or a CPU torch tensor:
    float32 (N, D), HOG, LBP, or both side by side (``kind``: "hog", "lbp", "hog+lbp").

    Cost, measured on one of this project's 2-core machines (busy with other work): for 70,000
    28x28 gray images about 50 s for HOG and 18 s for LBP, one image after another (0.7 ms and
    0.25 ms an image); a colour image adds the gray conversion. Threads do not help (scikit-image
    normalises HOG blocks in Python, under the GIL), so the images are not split among workers:
    cache the features of a data set rather than computing them again.
    Raises NeuroclassError for an unknown kind, images of another shape or dtype, or images too
    small for one HOG block or LBP cell.

    >>> import numpy as np
    >>> image_features(np.zeros((2, 1, 28, 28), np.uint8), "hog+lbp").shape
    (2, 1456)
    """
    opts = feature_options(options)
    gray = _gray(x, kind)
    _check_size(gray.shape[1:], kind, opts)
    parts = []
    if "hog" in kind.split("+"):
        parts.append(_hog(gray, opts))
    if "lbp" in kind.split("+"):
        parts.append(_lbp(gray, opts))
    return np.concatenate(parts, axis=1).astype(np.float32)


def feature_names(kind: str, shape: tuple[int, ...], options: Mapping[str, Any] | FeatureOptions | None = None
                  ) -> list[str]:
    """The names of ``image_features``' columns for images of ``shape`` ((C, H, W), or (H, W)),
    in order: ``hog_block{r}_{c}_cell{i}_{j}_o{k}`` (block row/column, cell in the block,
    orientation bin) and ``lbp_cell{r}_{c}_code{k}``.

    >>> feature_names("lbp", (1, 28, 28))[:2]
    ['lbp_cell0_0_code0', 'lbp_cell0_0_code1']
    """
    opts = feature_options(options)
    _check_kind(kind)
    height, width = shape[-2:]
    _check_size((height, width), kind, opts)
    names = []
    if "hog" in kind.split("+"):
        rows, cols = (height // opts.cell - opts.block + 1, width // opts.cell - opts.block + 1)
        names += [f"hog_block{r}_{c}_cell{i}_{j}_o{k}" for r in range(rows) for c in range(cols)
                  for i in range(opts.block) for j in range(opts.block) for k in range(opts.orientations)]
    if "lbp" in kind.split("+"):
        names += [f"lbp_cell{r}_{c}_code{k}" for r in range(opts.lbp_grid) for c in range(opts.lbp_grid)
                  for k in range(opts.lbp_points + 2)]
    return names


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        from neuroclass.registry import did_you_mean

        raise NeuroclassError(f"image features: kind must be one of {', '.join(KINDS)}. Got {kind!r} instead."
                              + did_you_mean(str(kind), list(KINDS)))


def _gray(x: Any, kind: str) -> np.ndarray:
    """uint8 (N, C, H, W) -> uint8 (N, H, W) gray images."""
    _check_kind(kind)
    images = np.asarray(x)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise NeuroclassError(f"image features: images must be uint8 (N, C, H, W) with C 1 or 3. Got "
                              f"{images.dtype} {images.shape} instead.")
    if images.shape[1] == 1:
        return images[:, 0]
    from skimage.color import rgb2gray

    # rgb2gray gives floats in [0, 1]; back to 0..255 whole numbers, as LBP compares integer pixels
    luma = rgb2gray(np.moveaxis(images, 1, -1))
    return np.round(luma * 255).astype(np.uint8)


def _check_size(size: tuple[int, ...], kind: str, opts: FeatureOptions) -> None:
    height, width = size
    if "hog" in kind.split("+") and min(height, width) < opts.cell * opts.block:
        raise NeuroclassError(f"image features: HOG needs images of at least {opts.cell * opts.block} "
                              f"pixels a side (cell {opts.cell} x block {opts.block}). Got {height}x{width}.")
    if "lbp" in kind.split("+") and min(height, width) < opts.lbp_grid:
        raise NeuroclassError(f"image features: an LBP grid of {opts.lbp_grid} cells needs images of at "
                              f"least {opts.lbp_grid} pixels a side. Got {height}x{width}.")


def _hog(gray: np.ndarray, opts: FeatureOptions) -> np.ndarray:
    """(N, H, W) uint8 -> (N, D) float64 HOG descriptors."""
    from skimage.feature import hog

    return np.stack([hog(image, orientations=opts.orientations, pixels_per_cell=(opts.cell, opts.cell),
                         cells_per_block=(opts.block, opts.block), block_norm="L2-Hys",
                         feature_vector=True) for image in gray])


def _lbp(gray: np.ndarray, opts: FeatureOptions) -> np.ndarray:
    """(N, H, W) uint8 -> (N, grid * grid * (P + 2)) LBP code shares per grid cell."""
    from skimage.feature import local_binary_pattern

    codes = np.stack([local_binary_pattern(image, opts.lbp_points, opts.lbp_radius, method="uniform")
                      for image in gray]).astype(np.int64)  # (N, H, W) in 0..P+1
    n, height, width = codes.shape
    bins, grid = opts.lbp_points + 2, opts.lbp_grid
    rows = np.arange(height) * grid // height  # the grid row of each pixel row
    cols = np.arange(width) * grid // width
    cell = rows[:, None] * grid + cols[None, :]  # (H, W) cell number
    index = (np.arange(n)[:, None, None] * grid * grid + cell[None]) * bins + codes
    counts = np.bincount(index.ravel(), minlength=n * grid * grid * bins).reshape(n, grid * grid, bins)
    pixels = np.bincount(cell.ravel(), minlength=grid * grid)  # pixels per cell
    return (counts / pixels[None, :, None]).reshape(n, -1)
