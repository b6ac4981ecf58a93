"""Pixels as an image viewer shows them: one PIL image of any mode -> 8-bit "L" or "RGB".

What a viewer does and a plain ``convert("RGB")`` does not:

- the EXIF Orientation tag is applied (a phone photo stored sideways is shown upright);
- transparency (RGBA, LA, PA, premultiplied RGBa/La, a palette or gray/RGB image with a
  transparency key) is composited on a stated background, white by default (``data.background``);
  gray images get the gray of that colour (ITU-R 601-2 luma, as PIL's ``convert("L")``);
- 16-bit, 32-bit and float pixels are scaled to 8 bits by the range of their type (a 16-bit value
  v becomes v / 257) instead of being clipped at 255;
- CMYK, YCbCr, LAB, HSV, palettes and 1-bit images become RGB or L.

Resized to a fixed size, an image keeps its proportions by the ``data.aspect`` rule (data/aspect.py:
centre crop, pad or stretch).

Every reader (training folders, the cache, evaluation, prediction, serving) goes through
``viewer_pixels`` via ``images.read_image``, and the settings are recorded as
``DecodeSettings.record()`` in the data's preprocessing and in model.json, so that prediction
decodes a file exactly as training did.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageColor, ImageOps

from neuroclass.config import DataConfig
from neuroclass.data.aspect import ASPECTS, fit_image
from neuroclass.errors import NeuroclassError

DECODE_VERSION = 4  # 1: PIL's convert() alone; 2: orientation, background, bit depth (this module);
# 3: as 2, and a JPEG larger than twice the target size is decoded at a reduced DCT scale (draft);
# 4: as 3, and the resize to a fixed size follows the recorded aspect rule (crop, pad or stretch;
# versions before 4 stretch)
WHITE = (255, 255, 255)
# Pillow's own warning limit (Image.MAX_IMAGE_PIXELS at import, 89,478,485 = 0.25 GiB of RGB at
# 3 bytes a pixel): with the default nothing Pillow would call a possible decompression bomb is
# decoded, and nothing a camera makes is refused (the largest common sensors are ~60 MP).
DEFAULT_MAX_PIXELS = 89_478_485
GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
ORIENTATION = 0x0112  # EXIF tag: 1 upright; 5..8 stored with width and height swapped


@dataclass(frozen=True)
class DecodeSettings:
    """How files become pixels: the ``background`` (r, g, b) that transparency is composited on
    (and ``pad``'s bars), ``max_pixels``, the largest width x height decoded (larger files are
    refused unread), the ``version`` of the decoder and the ``aspect`` rule of a resize to a fixed
    size (data/aspect.py). Versions: 4 (this module's viewer pixels, JPEGs decoded near the target
    size, the aspect rule) for new runs; 3 (the same, always stretched) and 2 (stretched, full JPEG
    scale) for runs trained before; 1 (PIL's ``convert()`` alone, no orientation, alpha dropped,
    16-bit clipped) for a model trained before the record existed, so that each model sees the
    pixels it was trained on. Before version 4 ``aspect`` is always ``stretch``.
    NeuroclassError for an ``aspect`` not in ``ASPECTS``.

    >>> DecodeSettings().record()["background"], DecodeSettings().aspect
    ([255, 255, 255], 'crop')
    """

    background: tuple[int, int, int] = WHITE
    max_pixels: int = DEFAULT_MAX_PIXELS
    version: int = DECODE_VERSION
    aspect: str = "crop"

    def __post_init__(self) -> None:
        if self.aspect not in ASPECTS:
            raise NeuroclassError(f"The 'data.aspect' parameter must be one of {', '.join(ASPECTS)}. "
                                  f"Got {self.aspect!r} instead.")
        if self.version < 4:  # those decoders knew one rule
            object.__setattr__(self, "aspect", "stretch")

    def record(self) -> dict:
        """The JSON-ready record kept in preprocessing["decode"], model.json and the cache key."""
        if self.version == 1:
            return {"version": 1, "orientation": "as stored", "alpha": "dropped",
                    "bit_depth": "clipped at 255", "max_pixels": self.max_pixels}
        return {"version": self.version, "orientation": "exif", "background": list(self.background),
                "alpha": "composited on background", "bit_depth": "scaled to 8 bits",
                "jpeg_scale": "reduced toward the target size" if self.version >= 3 else "full",
                "max_pixels": self.max_pixels, **({"aspect": self.aspect} if self.version >= 4 else {})}

    def draft(self, img: Image.Image, size: tuple[int, int] | None) -> None:
        """Before ``img`` (opened, not loaded) is decoded: a JPEG whose stored size is at least twice
        the target ``size`` (H, W) is set to decode at the largest of Pillow's DCT scales (1/2,
        1/4, 1/8) that still covers the target, in the stored orientation (PIL ``Image.draft``): a
        fraction of the decoding time and memory, the resize to ``size`` then smaller. Both sides
        still cover the target, so every aspect rule only shrinks: ``crop``'s centre box is at
        least ``size``, ``pad``'s scaled image at most ``size``. Decoder versions before 3, other
        formats and ``size`` None decode in full."""
        if self.version < 3 or size is None or img.format != "JPEG":
            return
        height, width = size
        if img.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8):  # stored sideways: the target turns too
            height, width = width, height
        if img.size[0] >= 2 * width and img.size[1] >= 2 * height:
            img.draft(img.mode, (width, height))

    @classmethod
    def from_record(cls, record: dict | None) -> "DecodeSettings":
        """The settings of a record; None (a model.json written before the record) gives decoder
        version 1, the one that model was trained with, and a record without ``aspect`` (a run or
        cache from before the rule) ``stretch``. NeuroclassError for an unknown ``aspect``."""
        if not record:
            return cls(version=1)
        return cls(tuple(int(v) for v in record.get("background", WHITE)),
                   int(record.get("max_pixels", DEFAULT_MAX_PIXELS)),
                   int(record.get("version", DECODE_VERSION)), str(record.get("aspect", "stretch")))

    def pixels(self, img: Image.Image) -> Image.Image:
        """``img`` decoded by this version: ``viewer_pixels`` (2), or as opened (1), for the caller's
        ``convert("L"/"RGB")``."""
        return img if self.version == 1 else viewer_pixels(img, self.background)

    def fit(self, img: Image.Image, size: tuple[int, int]) -> Image.Image:
        """An "L" or "RGB" image brought to ``size`` (H, W) by the ``aspect`` rule, ``pad``'s bars in
        the background colour (its gray for "L")."""
        fill = _gray(self.background) if img.mode == "L" else self.background
        return fit_image(img, size, self.aspect, fill)

    @classmethod
    def from_config(cls, cfg: DataConfig) -> "DecodeSettings":
        """``data.background`` (a colour name or #rrggbb), ``data.max_pixels`` and ``data.aspect``."""
        return cls(parse_colour(cfg.background), cfg.max_pixels, aspect=cfg.aspect)

    def background_text(self) -> str:
        """The background as ``#rrggbb``, the form ``data.background`` accepts."""
        return "#{:02x}{:02x}{:02x}".format(*self.background)


def parse_colour(text: str) -> tuple[int, int, int]:
    """(r, g, b) of a CSS colour name or #rgb/#rrggbb/rgb(...) text; NeuroclassError otherwise.

    >>> parse_colour("white"), parse_colour("#000")
    ((255, 255, 255), (0, 0, 0))
    """
    try:
        rgb = ImageColor.getrgb(str(text))
    except ValueError:
        raise NeuroclassError(f"The 'data.background' parameter must be a colour name or #rrggbb "
                              f"(e.g. white, black, #808080). Got {text!r} instead.") from None
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


def viewer_pixels(img: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """``img`` as a viewer shows it, as an 8-bit "L" (gray modes) or "RGB" (all others) image.

    Raises OSError/ValueError from PIL when the pixels cannot be read.

    >>> viewer_pixels(Image.new("LA", (2, 2), (0, 0))).getpixel((0, 0))  # transparent: white
    255
    """
    img = to_8_bits(img)  # first: it reads the file's format and tags, which a turned copy lacks
    img = upright(img)
    if img.mode in ALPHA_MODES or "transparency" in img.info:
        return flatten(img, background)
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("L" if img.mode == "1" else "RGB")  # P, CMYK, YCbCr, LAB, HSV, RGBX


def upright(img: Image.Image) -> Image.Image:
    """The image turned by its EXIF Orientation tag (PIL.ImageOps.exif_transpose); unchanged when it
    has none. An EXIF block too damaged to read leaves the pixels as stored, with a warning (which
    ``images.read_image`` catches and names the file in)."""
    try:
        return ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, IndexError) as exc:
        warnings.warn(f"EXIF orientation unreadable ({type(exc).__name__}: {exc}); "
                      "the pixels are used as stored", stacklevel=2)
        return img


def displayed_size(img: Image.Image) -> tuple[int, int]:
    """(H, W) once the EXIF orientation is applied, read from the header: the EXIF block PIL found
    while opening a JPEG, PNG or WebP (``img.getexif()`` would decode a PNG's pixels to look
    further). PIL gives a TIFF's size as displayed already, and turns its pixels when loading."""
    w, h = img.size
    try:
        exif = Image.Exif()
        exif.load(img.info.get("exif") or b"")
        orientation = exif.get(ORIENTATION)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, IndexError):
        orientation = None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def to_8_bits(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float images scaled to "L" by their type's range; others as given.

    I;16*: v / 257 (65535 -> 255). I (32-bit): 16-bit data when the file says so (PNG keeps 16-bit
    gray as "I"; PIL opens a PGM/PPM with maxval > 255 as "I" scaled to 0..65535, whatever the
    maxval; TIFF's BitsPerSample), else by the signed 32-bit range. JPEG 2000 and 16-bit TIFF open
    as "I;16". F: [0, 1] when every value
    lies in it (the float-image convention), else [0, its largest value]."""
    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img
    values = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16") or (img.mode == "I" and _is_16_bit(img)):
        top = 65535.0
    elif img.mode == "I":
        top = float(2**31 - 1)
    else:
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        top = 1.0 if values.max(initial=0.0) <= 1.0 else float(values.max())
    scaled = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
    out = Image.fromarray(scaled, mode="L")
    out.info = {k: v for k, v in img.info.items() if k != "transparency"}  # a key in 16-bit units
    return out


def _is_16_bit(img: Image.Image) -> bool:
    if img.format in ("PNG", "PPM"):  # PPM: PIL's plugin for P2/P3/P5/P6 files (.pgm, .ppm, .pnm)
        return True
    bits = getattr(img, "tag_v2", {}).get(258) if img.format == "TIFF" else None
    return bits is not None and max(bits if isinstance(bits, tuple) else (bits,)) <= 16


def flatten(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """An image with transparency composited on ``background``: "L" for gray ones, else "RGB"."""
    gray = img.mode in GRAY_MODES
    # RGBA/LA hold a palette's or a key's transparency without PIL's "convert to RGBA" warning
    rgba = img.convert("LA" if gray else "RGBA") if img.mode not in ("RGBA", "LA") else img
    colour = rgba.convert("L" if gray else "RGB")
    fill = _gray(background) if gray else background
    return Image.composite(colour, Image.new(colour.mode, img.size, fill), rgba.getchannel("A"))


def _gray(rgb: tuple[int, int, int]) -> int:
    """The gray a colour becomes in an "L" image (PIL's ITU-R 601-2 luma)."""
    return int(Image.new("RGB", (1, 1), rgb).convert("L").getpixel((0, 0)))
