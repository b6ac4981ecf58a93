"""How an image of one aspect ratio becomes a fixed (H, W): the ``data.aspect`` rule.

- ``crop`` (the default): scale so that the shorter side fits, then take the centre, as the usual
  Resize + CenterCrop of photo models (PIL ``ImageOps.fit``); nothing is distorted, the edges of
  the longer side are lost.
- ``pad``: scale so that the longer side fits and centre the image on the background colour
  (PIL ``ImageOps.pad``); nothing is lost or distorted, bars fill the rest.
- ``stretch``: resize both sides independently (the only rule of decoders before version 4):
  nothing is lost, shapes are squeezed.

All three resample with Pillow's BILINEAR filter, which widens its support when shrinking (an
area average, no aliasing). The rule is part of ``DecodeSettings`` (data/pixels.py), recorded in
model.json and the cache key, so prediction fits a file exactly as training did.
"""
from __future__ import annotations

from PIL import Image, ImageOps

ASPECTS = ("crop", "pad", "stretch")
RESAMPLE = Image.Resampling.BILINEAR


def fit_image(img: Image.Image, size: tuple[int, int], aspect: str,
              fill: int | tuple[int, int, int]) -> Image.Image:
    """``img`` (an "L" or "RGB" image) brought to ``size`` (H, W) pixels by the ``aspect`` rule;
    ``fill`` is the colour of ``pad``'s bars (an int for "L", (r, g, b) for "RGB"). An image
    already of that size is returned as it is. ValueError for an unknown ``aspect``.

    >>> fit_image(Image.new("L", (40, 20)), (10, 10), "crop", 255).size
    (10, 10)
    """
    height, width = size
    target = (width, height)  # PIL's order
    if img.size == target:
        return img
    if aspect == "crop":
        return ImageOps.fit(img, target, RESAMPLE)  # one resize of the centre box, no double resampling
    if aspect == "pad":
        scale = min(width / img.width, height / img.height)
        if round(img.width * scale) < 1 or round(img.height * scale) < 1:
            # thinner than half a pixel at this size: bars only, as recent Pillow's ImageOps.pad
            # gives (older versions raise on the empty resize)
            return Image.new(img.mode, target, fill)
        return ImageOps.pad(img, target, RESAMPLE, color=fill)
    if aspect == "stretch":
        return img.resize(target, RESAMPLE)
    raise ValueError(f"unknown aspect rule {aspect!r}; expected one of {', '.join(ASPECTS)}")
