"""A folder of photo-like JPEGs: objects of a few kinds on textured backgrounds.

What a user's own photo folder looks like to a classifier, made offline and in seconds: each image
is a JPEG of 300-600 pixels a side in one of many sizes, landscape or portrait (some stored sideways
with an EXIF Orientation tag, as phones do), with a smooth coloured texture, clutter (lines, boxes
and blobs of every colour) and one object whose shape is the class: its size, place and turn are
random, and its colour usually lies in the kind's own range of hues (a quarter of the objects take
any colour), as real kinds of things tend to have their colours. The layout is the usual one of photo
datasets, ``train/<class>/*.jpg`` and ``val/<class>/*.jpg``.

Example::

    write_photo_folder(Path("photos"), images=400, classes=3)
    sorted(p.name for p in Path("photos/train").iterdir())
    # -> ['disc', 'star', 'triangle']
"""
from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from neuroclass.errors import NeuroclassError

SHAPES = ("disc", "star", "triangle", "cross", "ring")
# each kind's usual hue (0-1 around the colour wheel), as real kinds of things have usual colours;
# a kind takes a hue within +-HUE_SPREAD of it three times in four, any colour otherwise
HUES = {"disc": 0.0, "star": 0.15, "triangle": 0.6, "cross": 0.33, "ring": 0.8}
HUE_SPREAD = 0.12
ORIENTATION = 0x0112  # EXIF tag; 6: stored turned 90 degrees anticlockwise, shown turned back
SIDE_RANGE = (300, 600)  # pixels, each side drawn independently


def _texture(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth random colour field with fine grain: blotches of 3-6 cells a side, bilinear."""
    cells = rng.integers(3, 7, size=2)
    base = rng.uniform(40, 215, size=3)
    field = base + rng.normal(0, 45, size=(cells[1], cells[0], 3))
    low = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8), "RGB")
    img = np.asarray(low.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float64)
    grain = rng.normal(0, rng.uniform(4, 14), size=(height, width, 1))
    if rng.random() < 0.4:  # stripes, as of wood, fabric or tiles
        period = rng.uniform(8, 40)
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[:height, :width]
        grain = grain + 18 * np.sin((xx * math.cos(angle) + yy * math.sin(angle)) / period)[..., None]
    return Image.fromarray(np.clip(img + grain, 0, 255).astype(np.uint8), "RGB")


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def _kind_colour(shape: str, rng: np.random.Generator) -> tuple[int, int, int]:
    """Usually a colour of the kind's hue (HUES), at a random saturation and brightness."""
    if rng.random() < 0.25:
        return _colour(rng)
    hue = (HUES[shape] + rng.uniform(-HUE_SPREAD, HUE_SPREAD)) % 1.0
    hsv = np.array([[[hue * 255, rng.uniform(120, 255), rng.uniform(110, 255)]]], dtype=np.uint8)
    return tuple(int(v) for v in Image.fromarray(hsv, "HSV").convert("RGB").getpixel((0, 0)))


def _clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, height: int) -> None:
    """Lines, rectangle outlines and ellipses of random colours: none of them a class shape."""
    for _ in range(rng.integers(3, 9)):
        x0, x1 = sorted(rng.integers(0, width, size=2))
        y0, y1 = sorted(rng.integers(0, height, size=2))
        kind = rng.integers(3)
        line = int(rng.integers(2, 7))
        if kind == 0:
            draw.line([(x0, y0), (x1, y1)], fill=_colour(rng), width=line)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], outline=_colour(rng), width=line)
        else:  # a small blob, well below the objects' size
            side = int(0.12 * min(width, height))
            draw.ellipse([x0, y0, x0 + rng.integers(4, side), y0 + rng.integers(4, side)], fill=_colour(rng))


def _outline(shape: str, cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    """The polygon of ``shape`` around (cx, cy) with radius ``r`` pixels, turned by ``turn`` radians."""
    if shape == "star":
        points = [(r if k % 2 == 0 else 0.42 * r, k * math.pi / 5) for k in range(10)]
    elif shape == "triangle":
        points = [(r, k * 2 * math.pi / 3) for k in range(3)]
    elif shape == "cross":
        w = 0.3 * r
        corners = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
                   (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        points = [(math.hypot(x, y), math.atan2(y, x)) for x, y in corners]
    else:
        points = [(r, k * 2 * math.pi / 48) for k in range(48)]  # disc and ring: a circle
    return [(cx + d * math.cos(a + turn), cy + d * math.sin(a + turn)) for d, a in points]


def draw_photo(shape: str, rng: np.random.Generator) -> Image.Image:
    """One RGB photo-like image (300-600 px a side) showing one ``shape`` among clutter."""
    width, height = (int(v) for v in rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1, size=2))
    img = _texture(rng, width, height)
    draw = ImageDraw.Draw(img)
    _clutter(draw, rng, width, height)
    r = rng.uniform(0.14, 0.3) * min(width, height)
    cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
    colour = _kind_colour(shape, rng)
    draw.polygon(_outline(shape, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=colour)
    if shape == "ring":  # a disc with a darker hole: half the colour of the object under it
        hole = _outline("disc", cx, cy, 0.55 * r, 0.0)
        draw.polygon(hole, fill=tuple(int(v) for v in np.asarray(img.getpixel((int(cx), int(cy)))) // 2))
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))


def _save_jpeg(img: Image.Image, path: Path, rng: np.random.Generator) -> None:
    """JPEG of quality 70-95; one in four stored sideways with the EXIF tag that turns it upright."""
    quality = int(rng.integers(70, 96))
    if rng.random() < 0.25:
        exif = Image.Exif()
        exif[ORIENTATION] = 6  # the viewer turns it 90 degrees clockwise
        img.transpose(Image.Transpose.ROTATE_90).save(path, "JPEG", quality=quality, exif=exif)
    else:
        img.save(path, "JPEG", quality=quality)


def write_photo_folder(out: Path, images: int = 400, classes: int = 3, val_fraction: float = 0.3,
                       seed: int = 0) -> Path:
    """Write ``images`` photo-like JPEGs of ``classes`` shapes (2-5: disc, star, triangle, cross,
    ring) to ``out/train/<shape>/`` and ``out/val/<shape>/``, balanced, ``val_fraction`` of each
    class in val/. The folder appears whole (written aside, then renamed). Returns ``out``.

    Raises NeuroclassError when ``out`` exists, ``classes`` is outside 2-5, or there are fewer
    than 2 images per class and split.
    """
    if not 2 <= classes <= len(SHAPES):
        raise NeuroclassError(f"classes must be 2 to {len(SHAPES)}. Got {classes} instead.")
    per_class = images // classes
    n_val = round(per_class * val_fraction)
    if n_val < 2 or per_class - n_val < 2:
        raise NeuroclassError(f"images={images} is too few for {classes} classes with val_fraction="
                              f"{val_fraction:g}: each class needs 2 images in val/ and 2 in train/; "
                              "ask for more images")
    if out.exists():
        raise NeuroclassError(f"{out}: already exists; pass a new folder")
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".tmp-{out.name}."))
    try:
        for shape in SHAPES[:classes]:
            for k in range(per_class):
                target = tmp / ("val" if k < n_val else "train") / shape
                target.mkdir(parents=True, exist_ok=True)
                _save_jpeg(draw_photo(shape, rng), target / f"{shape}_{k:04d}.jpg", rng)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
