"""The aspect rule (data/aspect.py through DecodeSettings and images.read_image): crop, pad and
stretch geometry, the record that carries the rule to prediction, and older records that stretch.

Inputs are drawn here with NumPy (bands of colour) and checked by where the colours land.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuroclass.config import DataConfig, load_config
from neuroclass.data.aspect import ASPECTS, fit_image
from neuroclass.data.cache import cache_key
from neuroclass.data.images import decode_many, read_header, read_image
from neuroclass.data.pixels import DecodeSettings
from neuroclass.errors import NeuroclassError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
BACKGROUND = (10, 20, 30)
ORIENTATION = 0x0112


def bands(path: Path, height: int = 32, width: int = 96, vertical: bool = True) -> Path:
    """An image in three equal bands, red | green | blue (left to right, or top to bottom)."""
    a = np.zeros((height, width, 3), np.uint8)
    third = (width if vertical else height) // 3
    for k, colour in enumerate((RED, GREEN, BLUE)):
        if vertical:
            a[:, k * third:(k + 1) * third] = colour
        else:
            a[k * third:(k + 1) * third] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def read(path: Path, aspect: str, channels: int = 3, size: tuple[int, int] = (16, 16),
         background: tuple[int, int, int] = BACKGROUND) -> np.ndarray:
    x, warned = read_image(path, channels, size, DecodeSettings(background=background, aspect=aspect))
    assert warned == []
    return x.astype(int)


# ----------------------------------------------------------------------------- geometry

def test_crop_keeps_the_centre_and_drops_the_sides(tmp_path):
    x = read(bands(tmp_path / "wide.png"), "crop")
    assert x.shape == (3, 16, 16)
    assert (x[0] < 64).all() and (x[2] < 64).all()  # red and blue thirds are gone (bar a bilinear edge)
    assert (x[1, :, 1:-1] == 255).all()  # the green centre fills the square


def test_crop_of_a_tall_image_drops_top_and_bottom(tmp_path):
    x = read(bands(tmp_path / "tall.png", height=96, width=32, vertical=False), "crop")
    assert (x[0] < 64).all() and (x[2] < 64).all() and (x[1, 1:-1, :] == 255).all()


def test_pad_keeps_everything_on_background_bars(tmp_path):
    x = read(bands(tmp_path / "wide.png"), "pad")
    picture = x[:, 6:11]  # 96x32 scaled by 1/6: 16x5 pixels, centred (rows 6-10)
    bars = np.concatenate([x[:, :6], x[:, 11:]], axis=1)
    assert (bars.transpose(1, 2, 0) == BACKGROUND).all()
    assert (picture[:, :, :4].transpose(1, 2, 0) == RED).all()  # the red third is kept, unsqueezed
    assert (picture[:, :, -4:].transpose(1, 2, 0) == BLUE).all()
    assert (picture[1, :, 6:10] == 255).all()


def test_stretch_keeps_everything_squeezed(tmp_path):
    x = read(bands(tmp_path / "wide.png"), "stretch")
    assert (x[:, :, :4].transpose(1, 2, 0) == RED).all()  # the red third: the left 16/3 columns
    assert (x[:, :, -4:].transpose(1, 2, 0) == BLUE).all()
    assert (x[1, :, 6:10] == 255).all()


def test_gray_images_get_the_gray_of_the_background_in_their_bars(tmp_path):
    wide = bands(tmp_path / "wide.png")
    gray = tmp_path / "gray.png"
    Image.open(wide).convert("L").save(gray)  # a 1-channel file, read as 1 channel
    for path in (wide, gray):
        x = read(path, "pad", channels=1, background=BLUE)
        assert x.shape == (1, 16, 16)
        assert (x[0, :6] == 29).all() and (x[0, 11:] == 29).all()  # blue's luma: 0.114 * 255
        assert (x[0, 6:11, :4] == 76).all()  # red's luma, the kept left third
    assert (read(gray, "crop", channels=1)[0, :, 1:-1] == 150).all()  # green's luma, the centre


def test_an_image_already_at_the_size_is_left_as_it_is(tmp_path):
    path = bands(tmp_path / "sq.png", height=16, width=16)
    stored = np.asarray(Image.open(path)).transpose(2, 0, 1)
    for aspect in ASPECTS:
        assert np.array_equal(read(path, aspect), stored)


def test_pad_of_a_line_thinner_than_half_a_pixel_is_bars_only():
    line = Image.new("RGB", (1000, 1), RED)
    out = fit_image(line, (16, 16), "pad", BACKGROUND)
    assert out.size == (16, 16) and (np.asarray(out) == BACKGROUND).all()
    assert fit_image(line, (16, 16), "crop", BACKGROUND).getpixel((8, 8)) == RED


def test_the_most_common_size_is_met_by_the_same_rule(tmp_path):
    root = tmp_path / "pics"
    paths = [bands(root / f"{i}.png", height=16, width=32) for i in range(3)]
    paths.append(bands(root / "wide.png", height=16, width=96))  # 1:6 among 1:2 images
    done = decode_many(paths, None, None, 0.0, str(root), DecodeSettings(aspect="crop"), workers=1)
    assert done.preprocessing["size"] == [16, 32]
    wide = done.x[3].astype(int)
    assert (wide[0] < 64).all() and (wide[1, :, 1:-1] == 255).all()  # cropped to its centre, no red


# ----------------------------------------------------------------------------- reduced-scale JPEGs

def smooth_photo(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((yy - h / 2) ** 2 + (xx - w / 2.5) ** 2) < (min(h, w) / 4) ** 2
    return np.stack([xx * 255 / w, yy * 255 / h, np.where(disc, 230, 40)], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("tag", [1, 6])
def test_a_drafted_jpeg_still_covers_the_crop(tmp_path, tag):
    photo = smooth_photo(320, 640)
    exif = Image.Exif()
    exif[ORIENTATION] = tag
    stored = photo if tag == 1 else np.ascontiguousarray(np.rot90(photo, 1))
    path = tmp_path / f"p{tag}.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif.tobytes())
    with Image.open(path) as img:
        DecodeSettings(aspect="crop").draft(img, (64, 64))
        assert min(img.size) >= 64 and max(img.size) < 640  # reduced, the shorter side still >= 64
    x = read(path, "crop", size=(64, 64))
    centre = Image.fromarray(photo[:, 160:480])  # the middle 320x320, drawn here
    expected = np.asarray(centre.resize((64, 64), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
    assert np.abs(x - expected.astype(int)).mean() < 6


# ----------------------------------------------------------------------------- the record

def test_the_aspect_is_recorded_and_read_back():
    for aspect in ASPECTS:
        settings = DecodeSettings(aspect=aspect)
        assert settings.record()["aspect"] == aspect
        assert DecodeSettings.from_record(settings.record()) == settings
        assert DecodeSettings.from_record(json.loads(json.dumps(settings.record()))) == settings
    assert DecodeSettings.from_config(DataConfig(aspect="pad")).aspect == "pad"
    assert DecodeSettings.from_config(DataConfig()).aspect == DataConfig().aspect == "crop"


def test_a_record_without_the_rule_decodes_stretched(tmp_path):
    v3 = {"version": 3, "orientation": "exif", "background": [255, 255, 255],
          "alpha": "composited on background", "bit_depth": "scaled to 8 bits",
          "jpeg_scale": "reduced toward the target size", "max_pixels": 89_478_485}
    old = DecodeSettings.from_record(v3)
    assert old.aspect == "stretch" and old.version == 3
    assert old.record() == v3  # an older run's record, and so its cache key, is unchanged
    assert DecodeSettings.from_record(None).aspect == "stretch"  # from before any record
    assert DecodeSettings(version=3, aspect="crop").aspect == "stretch"  # those decoders knew one rule
    path = bands(tmp_path / "wide.png")
    x, _ = read_image(path, 3, (16, 16), old)
    assert np.array_equal(x.astype(int), read(path, "stretch", background=(255, 255, 255)))


def test_an_unknown_rule_is_one_line_naming_the_field():
    with pytest.raises(NeuroclassError, match="'data.aspect' parameter must be one of crop, pad, stretch"):
        DecodeSettings.from_record({"version": 4, "aspect": "zoom"})
    with pytest.raises(NeuroclassError, match="data.aspect"):
        load_config(overrides=["data.aspect=zoom"])


def test_the_config_offers_the_rules_the_decoder_knows():
    field = next(f for f in dataclasses.fields(DataConfig) if f.name == "aspect")
    assert tuple(field.metadata["rule"]["choices"]) == ASPECTS
    for aspect in ASPECTS:
        assert DecodeSettings.from_config(DataConfig(aspect=aspect)).aspect == aspect


def test_each_rule_gets_its_own_cache_key(tmp_path):
    paths = [bands(tmp_path / "pics" / "a" / "x.png")]
    keys = {cache_key(tmp_path / "pics", paths, None, (16, 16), 0.01, DecodeSettings(aspect=aspect))
            for aspect in ASPECTS}
    assert len(keys) == 3


# ----------------------------------------------------------------------------- prediction

def test_predict_fits_a_file_of_another_aspect_as_training_did(tmp_path):
    """A run trained on photos with data.aspect=pad records the rule; prediction and evaluation
    decode a file of another aspect ratio to the pixels training decoded it to."""
    from neuroclass.data.synthetic_photos import write_photo_folder
    from neuroclass.evaluation.evaluate import data_inputs
    from neuroclass.inference import Predictor
    from neuroclass.pipeline import train
    from neuroclass.runs import RunFolder

    root = write_photo_folder(tmp_path / "photos", images=12, classes=2)
    cfg = load_config(overrides=[f"data.source={root}", "data.image_size=16", "data.aspect=pad",
                                 "data.cache=false", "model.name=cnn", "model.options.channels=[4]",
                                 "model.options.convs_per_stage=1", "model.options.hidden=8",
                                 f"out={tmp_path / 'runs'}", "train.epochs=1", "train.quiet=true"])
    run = RunFolder(train(cfg, report=False).path)
    record = run.meta()["preprocessing"]["decode"]
    assert record["aspect"] == "pad" and record["version"] == 4
    files = sorted(root.rglob("*.jpg"))
    trained = decode_many(files, 3, (16, 16), 0.0, str(root), DecodeSettings.from_config(cfg.data), workers=1)
    oblong = [i for i, f in enumerate(files) if len(set(read_header(f, 10**8)[1])) == 2]
    assert oblong  # the generator draws photos of many sizes
    predicted, _ = Predictor.from_run(run.path).load_files([files[i] for i in oblong])
    assert np.array_equal(predicted.numpy(), trained.x[oblong])
    stretched, _ = read_image(files[oblong[0]], 3, (16, 16), DecodeSettings(aspect="stretch"))
    assert not np.array_equal(predicted[0].numpy(), stretched)
    evaluated = data_inputs(str(root), run, run.meta(), test_part=False)
    assert sorted(map(bytes, evaluated.x.numpy())) == sorted(map(bytes, trained.x))
