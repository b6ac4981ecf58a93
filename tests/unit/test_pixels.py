"""Pixels as a viewer shows them (data/pixels.py through images.read_image): EXIF orientation,
transparency on the stated background, bit depths scaled to 8 bits, CMYK and other modes.

Each input is generated here with Pillow/NumPy and compared with a control drawn independently
(NumPy rotations and compositing), never with the function under test.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from neuroclass.config import DataConfig
from neuroclass.data.folder import load_image_folder
from neuroclass.data.images import read_image
from neuroclass.data.pixels import DecodeSettings, viewer_pixels
from neuroclass.errors import NeuroclassError

WHITE = DecodeSettings()
ORIENTATION = 0x0112
# EXIF orientation -> how the stored pixels are made from the upright ones (the inverse of what a
# viewer does to show them): 6 means "rotate 90 degrees clockwise to show", so store them
# rotated 90 degrees counter-clockwise; 5 and 7 mirror across a diagonal (their own inverses)
STORE = {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
         5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, 1),
         7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, -1)}


def upright_rgb(h: int = 6, w: int = 10, seed: int = 0) -> np.ndarray:
    """uint8 (H, W, 3) noise: every rotation or flip of it is a different image."""
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def chw(a: np.ndarray) -> np.ndarray:
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def read(path: Path, channels: int = 3, settings: DecodeSettings = WHITE) -> np.ndarray:
    x, warned = read_image(path, channels, None, settings)
    assert warned == [], warned
    return x


def save_with_orientation(path: Path, upright: np.ndarray, tag: int, **options) -> Path:
    exif = Image.Exif()
    exif[ORIENTATION] = tag
    Image.fromarray(np.ascontiguousarray(STORE[tag](upright))).save(path, exif=exif.tobytes(), **options)
    return path


# ----------------------------------------------------------------------------- EXIF orientation

@pytest.mark.parametrize("tag", range(1, 9))
def test_every_exif_orientation_decodes_upright(tmp_path, tag):
    upright = upright_rgb()
    path = save_with_orientation(tmp_path / f"o{tag}.png", upright, tag)
    assert np.array_equal(read(path), chw(upright))


@pytest.mark.parametrize("tag", [6, 8])
def test_a_sideways_phone_jpeg_decodes_like_its_upright_copy(tmp_path, tag):
    upright = np.kron(upright_rgb(4, 6), np.ones((8, 8, 1), np.uint8))  # smooth blocks: JPEG-friendly
    control = tmp_path / "upright.jpg"
    Image.fromarray(upright).save(control, quality=95)
    sideways = save_with_orientation(tmp_path / "sideways.jpg", upright, tag, quality=95)
    with Image.open(sideways) as stored:
        assert stored.size == (32, 48)  # stored sideways...
    got, want = read(sideways).astype(int), read(control).astype(int)
    assert got.shape == want.shape == (3, 32, 48)  # ...decoded upright
    assert np.abs(got - want).mean() < 4


def test_the_folder_size_vote_uses_the_displayed_size(tmp_path):
    root = tmp_path / "pics"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
    for i in range(3):  # a/: stored 10x6 with tag 6, shown 6x10 like every image in b/
        save_with_orientation(root / "a" / f"{i}.png", upright_rgb(seed=i), 6)
        Image.fromarray(upright_rgb(seed=10 + i)).save(root / "b" / f"{i}.png")
    ds = load_image_folder(root, None, None, 0.0, cache=False)
    assert ds.input_shape == (3, 6, 10)
    assert np.array_equal(ds.x[0].numpy(), chw(upright_rgb(seed=0)))


# ----------------------------------------------------------------------------- transparency

def on_background(rgb: np.ndarray, alpha: np.ndarray, background) -> np.ndarray:
    """The control: straight alpha compositing in integers, (c * a + b * (255 - a)) / 255."""
    a = alpha[..., None].astype(np.float64) / 255
    return np.rint(rgb * a + np.asarray(background, np.float64) * (1 - a)).astype(np.uint8)


def rgba_image(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    alpha = rng.choice(np.array([0, 0, 90, 255, 255], np.uint8), size=(8, 8))
    rgb[alpha == 0] = 0  # what exporters store under a transparent pixel
    return rgb, alpha


@pytest.mark.parametrize("background", [(255, 255, 255), (0, 0, 0), (40, 120, 200)])
def test_rgba_is_composited_on_the_background(tmp_path, background):
    rgb, alpha = rgba_image()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "t.png")
    got = read(tmp_path / "t.png", settings=DecodeSettings(background=background)).astype(int)
    assert np.abs(got - chw(on_background(rgb, alpha, background)).astype(int)).max() <= 1


def test_a_transparent_background_is_white_not_black(tmp_path):
    rgb, alpha = rgba_image()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "t.png")
    x = read(tmp_path / "t.png")
    assert (x[:, alpha == 0] == 255).all()


def test_gray_with_alpha_stays_gray_on_the_gray_of_the_background(tmp_path):
    rgb, alpha = rgba_image()
    gray = rgb[..., 0]
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    red = DecodeSettings(background=(255, 0, 0))
    x = read(tmp_path / "la.png", channels=1, settings=red)
    luma_of_red = 76  # ITU-R 601-2: 255 * 299 / 1000
    want = on_background(np.dstack([gray] * 3), alpha, (luma_of_red,) * 3)[..., 0]
    assert np.abs(x[0].astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("key", ["index", "per-entry alphas"])
def test_palette_transparency_is_composited_without_a_warning(tmp_path, key):
    rng = np.random.default_rng(2)
    index = rng.integers(0, 4, size=(8, 8), dtype=np.uint8)
    colours = np.array([[0, 0, 0], [200, 30, 30], [30, 200, 30], [30, 30, 200]], np.uint8)
    img = Image.fromarray(index, "P")
    img.putpalette(colours.flatten().tolist())
    alphas = np.array([0, 255, 128, 255], np.uint8)
    transparency = 0 if key == "index" else bytes(alphas)
    img.save(tmp_path / "p.png", transparency=transparency)
    if key == "index":
        alphas = np.array([0, 255, 255, 255], np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. PIL's "Palette images with Transparency expressed in bytes"
        x = read(tmp_path / "p.png")
    want = on_background(colours[index], alphas[index], (255, 255, 255))
    assert np.abs(x.astype(int) - chw(want).astype(int)).max() <= 1


def test_a_gif_with_a_transparent_index_shows_the_background(tmp_path):
    index = np.zeros((8, 8), np.uint8)
    index[2:6, 2:6] = 1
    img = Image.fromarray(index, "P")
    img.putpalette([0, 0, 0, 250, 10, 10] + [0, 0, 0] * 254)
    img.save(tmp_path / "t.gif", transparency=0)
    x = read(tmp_path / "t.gif")
    assert (x[:, index == 0] == 255).all() and (x[:, 3, 3] == [250, 10, 10]).all()


# ----------------------------------------------------------------------------- bit depth

def test_16_bit_gray_png_is_scaled_not_clipped(tmp_path):
    values = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "g16.png")
    x = read(tmp_path / "g16.png", channels=1)
    assert np.array_equal(x[0], np.rint(values / 257).astype(np.uint8))
    assert x[0, 0, 1] == round(1040 / 257)  # PIL's convert("L") clips 1040 to 255


@pytest.mark.parametrize("dtype, top", [(np.uint16, 65535), (np.int32, 2**31 - 1)])
def test_16_and_32_bit_tiff_are_scaled_by_their_range(tmp_path, dtype, top):
    values = (np.linspace(0, 1, 64) * top).astype(dtype).reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "g.tif")
    x = read(tmp_path / "g.tif", channels=1)
    assert np.abs(x[0].astype(int) - np.rint(values / top * 255).astype(int)).max() <= 1


def test_float_tiff_in_0_1_is_scaled_to_255(tmp_path):
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "f.tif")
    assert np.abs(read(tmp_path / "f.tif", channels=1)[0].astype(int) -
                  np.rint(values * 255).astype(int)).max() <= 1


@pytest.mark.parametrize("maxval", [65535, 4095, 1000])
@pytest.mark.parametrize("magic", ["P5", "P2"])
def test_pgm_with_more_than_8_bits_is_scaled_by_its_maxval(tmp_path, maxval, magic):
    values = np.linspace(0, maxval, 64).round().astype(np.uint16).reshape(8, 8)
    header = f"{magic}\n8 8\n{maxval}\n".encode()
    body = (values.astype(">u2").tobytes() if magic == "P5"
            else " ".join(str(v) for v in values.ravel()).encode() + b"\n")
    (tmp_path / "g.pgm").write_bytes(header + body)
    x = read(tmp_path / "g.pgm", channels=1)
    control = np.rint(values / maxval * 255).astype(int)  # what the file's maxval means
    assert np.abs(x[0].astype(int) - control).max() <= 1
    assert x[0].max() == 255 and x[0].mean() > 100


def test_16_bit_jpeg2000_is_scaled_by_its_range(tmp_path):
    if not features.check("jpg_2000"):
        pytest.skip("this Pillow has no OpenJPEG")
    values = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "g.jp2", irreversible=False)
    x = read(tmp_path / "g.jp2", channels=1)
    assert np.abs(x[0].astype(int) - np.rint(values / 257).astype(int)).max() <= 1


def test_16_bit_rgb_png_keeps_its_brightness(tmp_path):
    rgb = (upright_rgb().astype(np.uint16) * 257)  # 8-bit values stretched to 16 bits
    img = Image.frombytes("RGB", (10, 6), rgb.astype(">u2").tobytes(), "raw", "RGB;16B")
    img.save(tmp_path / "rgb.png")
    assert np.abs(read(tmp_path / "rgb.png").astype(int) - chw(upright_rgb()).astype(int)).max() <= 1


# ----------------------------------------------------------------------------- colour spaces

def test_a_cmyk_jpeg_is_close_to_its_rgb_control(tmp_path):
    rgb = np.kron(upright_rgb(4, 4, seed=3), np.ones((8, 8, 1), np.uint8))
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=95)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as stored:
        assert stored.mode == "CMYK"
    control = np.abs(read(tmp_path / "rgb.jpg").astype(int) - chw(rgb).astype(int)).mean()
    got = np.abs(read(tmp_path / "cmyk.jpg").astype(int) - chw(rgb).astype(int)).mean()
    assert got < 4 and got <= control + 1  # as close to the drawn colours as the RGB JPEG is


@pytest.mark.parametrize("mode", ["YCbCr", "LAB", "HSV", "CMYK", "RGBX", "P"])
def test_other_colour_modes_become_the_rgb_a_viewer_shows(mode):
    rgb = upright_rgb(seed=4)
    img = Image.fromarray(rgb)
    converted = _to_lab(img) if mode == "LAB" else \
        img.convert(mode, palette=Image.Palette.ADAPTIVE) if mode == "P" else img.convert(mode)
    got = np.asarray(viewer_pixels(converted)).astype(int)
    assert viewer_pixels(converted).mode == "RGB"
    assert np.abs(got - rgb.astype(int)).mean() < 3


def _to_lab(img: Image.Image) -> Image.Image:
    from PIL import ImageCms
    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    return ImageCms.applyTransform(img, ImageCms.buildTransform(srgb, lab, "RGB", "LAB"))


def test_one_bit_images_are_black_and_white(tmp_path):
    bits = np.random.default_rng(5).integers(0, 2, size=(8, 8)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    assert np.array_equal(read(tmp_path / "b.png", channels=1)[0], bits.astype(np.uint8) * 255)


def test_a_folder_mixing_gray_palette_and_rgb_is_read_as_rgb(tmp_path):
    root = tmp_path / "pics"
    for k, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        Image.fromarray(upright_rgb(seed=k)).save(root / name / "rgb.jpg")
        Image.fromarray(upright_rgb(seed=k)[..., 0]).save(root / name / "gray.png")
        Image.fromarray(upright_rgb(seed=k)).convert("P").save(root / name / "palette.png")
    ds = load_image_folder(root, None, None, 0.0, cache=False)
    assert ds.input_shape == (3, 6, 10) and len(ds) == 6
    gray = ds.x[0].numpy()  # a/gray.png (sorted first): its one channel repeated
    assert np.array_equal(gray[0], gray[1]) and np.array_equal(gray[0], upright_rgb(seed=0)[..., 0])


def test_a_gray_folder_with_16_bit_and_alpha_images_is_read_as_gray(tmp_path):
    root = tmp_path / "pics"
    for k, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        Image.fromarray(np.full((6, 6), 1000 * (k + 1), np.uint16)).save(root / name / "16.png")
        Image.fromarray(np.full((6, 6, 2), 100, np.uint8), "LA").save(root / name / "la.png")
    ds = load_image_folder(root, None, None, 0.0, cache=False)
    assert ds.input_shape == (1, 6, 6)


# ----------------------------------------------------------------------------- the record

def test_the_record_round_trips_and_a_missing_one_gives_the_defaults():
    settings = DecodeSettings(background=(1, 2, 3), max_pixels=1000)
    record = settings.record()
    assert record["version"] == 4 and record["orientation"] == "exif" and record["background"] == [1, 2, 3]
    assert DecodeSettings.from_record(record) == settings
    assert DecodeSettings() == DecodeSettings.from_config(DataConfig())
    assert DecodeSettings.from_record(None).version == 1  # a model.json from before the record
    assert DecodeSettings.from_record(DecodeSettings(version=1).record()).version == 1


def test_a_run_from_before_the_record_decodes_as_plain_convert(tmp_path):
    """EXIF, alpha and 16-bit images give a model trained before the record its training pixels."""
    old = DecodeSettings.from_record(None)
    rgba = np.zeros((6, 10, 4), np.uint8)
    rgba[..., 0] = 200  # red, fully transparent: convert("RGB") keeps the red, a viewer shows white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    save_with_orientation(tmp_path / "o.png", upright_rgb(), 6)
    Image.fromarray(np.linspace(0, 65535, 60).astype(np.uint16).reshape(6, 10)).save(tmp_path / "g16.png")
    for name, channels in (("a.png", 3), ("o.png", 3), ("g16.png", 1)):
        with Image.open(tmp_path / name) as img:
            control = chw(np.asarray(img.convert("L" if channels == 1 else "RGB")))
        assert np.array_equal(read(tmp_path / name, channels, old), control), name
        assert not np.array_equal(read(tmp_path / name, channels), control), name


def test_data_background_takes_names_and_hex():
    assert DecodeSettings.from_config(DataConfig(background="black")).background == (0, 0, 0)
    assert DecodeSettings.from_config(DataConfig(background="#102030")).background == (16, 32, 48)
    with pytest.raises(NeuroclassError, match="data.background"):
        DecodeSettings.from_config(DataConfig(background="blak"))


def without_pixels(path: Path, kept: int = 4) -> Path:
    """``path`` cut ``kept`` bytes into its pixel data, its header whole: a file that opens but does
    not decode. The pixels begin where Pillow stopped reading on opening it (PNG, JPEG) or at the
    first strip (TIFF, whose header Pillow reads by seeking)."""
    with Image.open(path) as img:
        start = max(img.fp.tell(), img.tile[0].offset)
    path.write_bytes(path.read_bytes()[: start + kept])
    return path


def test_reading_headers_decodes_no_pixels(tmp_path):
    from neuroclass.data.images import UnreadableImage, read_header

    paths = [save_with_orientation(tmp_path / f"o.{fmt}", upright_rgb(), 6) for fmt in ("png", "jpg", "tif")]
    Image.fromarray(upright_rgb()).save(tmp_path / "plain.png")
    paths = [without_pixels(p) for p in (*paths, tmp_path / "plain.png")]
    for path in paths:  # decoding them fails: their pixels are cut off
        with pytest.raises(UnreadableImage, match="truncated"):
            read_image(path, 3, None, WHITE)
    assert [read_header(p, 10**6) for p in paths] == [("RGB", (6, 10))] * 4


def test_data_load_decodes_with_a_given_record(tmp_path):
    from neuroclass import data as data_mod
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., 0] = 200
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(rgba, "RGBA").save(tmp_path / name / f"{i}.png")
    cfg = DataConfig(source=str(tmp_path), cache=False)
    assert int(data_mod.load(cfg).x[0, 0, 0, 0]) == 255  # transparent on white
    old = data_mod.load(cfg, DecodeSettings(version=1))
    assert old.x[0, :, 0, 0].tolist() == [200, 0, 0]
    assert old.preprocessing["decode"]["version"] == 1


# ----------------------------------------------------------------------------- JPEG at a reduced scale

def smooth_photo(h: int, w: int) -> np.ndarray:
    """uint8 (H, W, 3): smooth colour gradients with a disc, like a photo's low frequencies."""
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((yy - h / 2) ** 2 + (xx - w / 3) ** 2) < (min(h, w) / 4) ** 2
    rgb = np.stack([xx * 255 / w, yy * 255 / h, np.where(disc, 230, 40)], axis=-1)
    return rgb.astype(np.uint8)


@pytest.mark.parametrize("tag", [1, 6])
def test_a_large_jpeg_is_decoded_near_the_target_size_and_looks_the_same(tmp_path, tag):
    photo = smooth_photo(480, 640)
    path = save_with_orientation(tmp_path / f"p{tag}.jpg", photo, tag, quality=95)
    with Image.open(path) as img:  # the target (48, 64) turns with the stored orientation
        DecodeSettings().draft(img, (48, 64))
        stored = img.size
    full_w, full_h = (640, 480) if tag == 1 else (480, 640)
    assert stored[0] < full_w and stored[1] < full_h  # decoded at 1/2, 1/4 or 1/8 scale
    assert stored[0] >= (64 if tag == 1 else 48) and stored[1] >= (48 if tag == 1 else 64)
    reduced, _ = read_image(path, 3, (48, 64), DecodeSettings())
    full, _ = read_image(path, 3, (48, 64), DecodeSettings(version=2))  # full scale, then resized
    assert reduced.shape == full.shape == (3, 48, 64)
    assert not np.array_equal(reduced, full)  # read_image decoded at the reduced scale ...
    assert np.abs(reduced.astype(int) - full.astype(int)).mean() < 4  # ... the same picture, upright
    expected = chw(np.asarray(Image.fromarray(photo).resize((64, 48), Image.Resampling.BILINEAR)))
    assert np.abs(reduced.astype(int) - expected.astype(int)).mean() < 6


def test_small_targets_only_and_jpeg_only_are_drafted(tmp_path):
    photo = smooth_photo(120, 160)
    Image.fromarray(photo).save(tmp_path / "p.jpg", quality=95)
    Image.fromarray(photo).save(tmp_path / "p.png")
    for name, size, settings in [("p.jpg", (80, 100), DecodeSettings()),  # not half the stored size
                                 ("p.png", (15, 20), DecodeSettings()),  # not a JPEG
                                 ("p.jpg", (15, 20), DecodeSettings(version=2)),  # an older run's decoder
                                 ("p.jpg", None, DecodeSettings())]:  # no target
        with Image.open(tmp_path / name) as img:
            settings.draft(img, size)
            assert img.size == (160, 120), (name, size, settings.version)
    assert DecodeSettings(version=2).record()["version"] == 2  # an older run keeps its own record
