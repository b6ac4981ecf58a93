"""Reading image files (data/images.py, data/sniff.py): warnings that name their file, the
data.max_pixels limit checked from the header, and one clear reason for an empty, cut-off or
non-image file, in training folders and in prediction alike.
"""
from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuroclass.data.folder import load_image_folder
from neuroclass.data.images import UnreadableImage, load_image, read_header, read_image
from neuroclass.data.pixels import DEFAULT_MAX_PIXELS, DecodeSettings
from neuroclass.errors import NeuroclassError

TRUNCATED = "data is truncated: the file ends early; re-export or re-download it"


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (8, 8), fmt: str = "PNG",
                **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt, **options)
    return path


def bad_exif_jpeg(path: Path) -> Path:
    """A JPEG whose EXIF block names a description longer than the block: PIL warns
    "Tag data larger than file. Skipping tag 270" when it reads the orientation."""
    entries = struct.pack("<HHII", 0x0112, 3, 1, 1) + struct.pack("<HHII", 0x010E, 2, 100, 5000)
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + struct.pack("<I", 0)
    return write_image(path, fmt="JPEG", exif=b"Exif\x00\x00" + tiff)


def folder(root: Path, per_class: int = 4) -> Path:
    for k, name in enumerate(("cat", "dog")):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", seed=10 * k + i)
    return root


def messages(caught) -> list[str]:
    return [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- named warnings

def test_a_library_warning_while_reading_names_the_file(tmp_path):
    path = bad_exif_jpeg(tmp_path / "odd.jpg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, warned = read_image(path, 3, None, DecodeSettings())
    assert caught == []  # caught inside and returned, not leaked
    assert x.shape == (3, 8, 8)
    assert [w.path for w in warned] == [str(path)] and "Tag data larger than file" in warned[0].reason


def test_prediction_repeats_it_as_one_line_naming_the_file(tmp_path, recwarn):
    path = bad_exif_jpeg(tmp_path / "odd.jpg")
    load_image(path, 3, (8, 8))
    lines = messages(recwarn)
    assert len(lines) == 1 and lines[0].startswith(f"{path}: Tag data larger than file")


def test_folder_warnings_are_one_line_naming_each_file_and_recorded(tmp_path):
    root = folder(tmp_path / "pics")
    bad = [bad_exif_jpeg(root / "cat" / "odd.jpg"), bad_exif_jpeg(root / "dog" / "odd.jpg")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_image_folder(root, None, None, 0.0)
    lines = messages(caught)
    assert len(lines) == 1 and all(str(p) in lines[0] for p in bad), lines
    assert "2 warnings while reading images" in lines[0]
    assert [w.path for w in ds.issues.warnings] == [str(p) for p in bad] and len(ds) == 10
    with warnings.catch_warnings(record=True) as again:  # a cache hit decodes nothing: same line
        warnings.simplefilter("always")
        hit = load_image_folder(root, None, None, 0.0)
    assert hit.preprocessing["cache"] == "hit" and messages(again) == lines
    assert hit.issues.warnings == ds.issues.warnings


def bilevel_png(path: Path, side: int) -> Path:
    """A black side x side 1-bit PNG: tens of kB on disk, side * side bytes once Pillow decodes it."""
    Image.new("1", (side, side)).save(path)
    return path


def near_pillows_limits(root: Path) -> tuple[Path, Path]:
    """Two real images in a folder of 8: one over Pillow's warning limit, one over its refusal."""
    folder(root)
    warned = bilevel_png(root / "cat" / "warned.png", 9500)  # 90,250,000 pixels
    refused = bilevel_png(root / "dog" / "refused.png", 13400)  # 179,560,000 pixels
    assert 9500**2 > Image.MAX_IMAGE_PIXELS and 13400**2 > 2 * Image.MAX_IMAGE_PIXELS > 9500**2
    return warned, refused


def test_images_pillow_warns_or_refuses_about_are_skipped_at_the_default_limit(tmp_path):
    warned, refused = near_pillows_limits(tmp_path / "pics")
    assert DEFAULT_MAX_PIXELS == Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_image_folder(tmp_path / "pics", 1, 8, 0.2, cache=False)
    lines = messages(caught)
    assert len(lines) == 1 and "skipped 2 of 10" in lines[0], lines
    assert str(warned) in lines[0] and str(refused) in lines[0]
    assert [(s.path, s.reason) for s in ds.issues.skipped] == [
        (str(warned), "9500x9500 = 90,250,000 pixels is over the limit of 89,478,485 "
                      "(data.max_pixels); shrink the image, or raise the limit when training with "
                      "--set data.max_pixels=90250000"),
        (str(refused), "13400x13400 = 179,560,000 pixels is over 178,956,970, the most Pillow decodes "
                       "(it refuses larger files as possible decompression bombs); shrink the image")]
    assert len(ds) == 8 and ds.issues.warnings == []


def test_no_warning_lacks_a_file_name_near_pillows_bomb_limits(tmp_path):
    warned, refused = near_pillows_limits(tmp_path / "pics")
    with warnings.catch_warnings(record=True) as caught:  # Pillow warns about warned.png: not passed on
        warnings.simplefilter("always")
        ds = load_image_folder(tmp_path / "pics", 1, 8, 0.1, cache=False,
                               decode=DecodeSettings(max_pixels=200_000_000))
    lines = messages(caught)
    assert len(lines) == 1 and "skipped 1 of 10" in lines[0] and str(refused) in lines[0], lines
    assert "13400x13400 = 179,560,000 pixels is over 178,956,970, the most Pillow decodes" in lines[0]
    assert str(warned) not in lines[0]
    assert len(ds) == 9 and ds.issues.warnings == []  # within data.max_pixels: decoded, silent
    assert int((ds.x.flatten(1) == 0).all(1).sum()) == 1  # warned.png, all black; the others are noise
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS  # neuroclass never changes Pillow's limit


# ----------------------------------------------------------------------------- the pixel limit

def test_a_file_over_max_pixels_is_skipped_before_decoding(tmp_path):
    root = folder(tmp_path / "pics", per_class=60)
    big = cut(write_image(root / "cat" / "big.png", size=(20, 20)), 0.6)  # its header whole
    with pytest.raises(UnreadableImage, match="data is truncated"):  # decoded, it says so
        read_image(big, 3, None, DecodeSettings())
    with pytest.warns(UserWarning, match="skipped 1 of 121") as caught:
        ds = load_image_folder(root, None, None, 0.01, cache=False, decode=DecodeSettings(max_pixels=100))
    (line,) = messages(caught)
    assert str(big) in line and "--set data.max_pixels=400" in line and "truncated" not in line
    assert len(ds) == 120 and [(s.path, s.reason) for s in ds.issues.skipped] == [(  # refused unread
        str(big), "20x20 = 400 pixels is over the limit of 100 (data.max_pixels); shrink the image, "
                  "or raise the limit when training with --set data.max_pixels=400")]


def test_files_over_the_limit_count_against_max_bad_fraction(tmp_path):
    root = folder(tmp_path / "pics")
    write_image(root / "cat" / "big.png", size=(20, 20))
    with pytest.raises(NeuroclassError, match=r"1 of 9 images is unreadable.*data.max_pixels"):
        load_image_folder(root, None, None, 0.01, decode=DecodeSettings(max_pixels=100))


def test_predict_on_a_file_over_the_limit_is_one_line(tmp_path):
    path = write_image(tmp_path / "big.png", size=(20, 20))
    with pytest.raises(NeuroclassError) as info:
        load_image(path, 3, (8, 8), DecodeSettings(max_pixels=100))
    assert str(info.value).startswith(f"{path}: 20x20 = 400 pixels is over the limit")
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- unreadable files

def cut(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.mark.parametrize("fmt, suffix, keep", [("JPEG", ".jpg", 0.6), ("JPEG", ".jpg", 0.05),
                                               ("PNG", ".png", 0.6), ("GIF", ".gif", 0.6)])
def test_a_cut_off_file_says_it_is_truncated(tmp_path, fmt, suffix, keep):
    path = cut(write_image(tmp_path / f"x{suffix}", size=(64, 64), fmt=fmt), keep)
    with pytest.raises(NeuroclassError) as info:
        load_image(path, 3, (8, 8))
    assert str(info.value) == f"{path}: the {fmt} {TRUNCATED}"


def test_an_empty_file_says_it_is_empty(tmp_path):
    path = tmp_path / "download_failed.jpg"
    path.write_bytes(b"")
    with pytest.raises(NeuroclassError) as info:
        load_image(path, 3, (8, 8))
    assert str(info.value) == f"{path}: file is empty (0 bytes)"


@pytest.mark.parametrize("content, what", [
    (b"<!DOCTYPE html><html><body>Access denied</body></html>", "an HTML page"),
    (b"%PDF-1.7\n", "a PDF document"), (b"PK\x03\x04" + bytes(30), "a ZIP archive"),
    (b"just some notes\n", "text")])
def test_an_image_suffix_on_other_content_says_what_it_is_not(tmp_path, content, what):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(NeuroclassError) as info:
        load_image(path, 3, (8, 8))
    line = str(info.value)
    assert line.startswith(f"{path}: not a JPEG image: its content is {what}") and "\n" not in line


@pytest.mark.parametrize("name", ["IMG_0001.jpg", "IMG_0001.heic"])
def test_an_iphone_heic_photo_says_so_whatever_its_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(16))
    with pytest.raises(NeuroclassError) as info:
        load_image(path, 3, (8, 8))
    assert str(info.value) == (f"{path}: the file is a HEIC/HEIF photo (as iPhones save), which Pillow "
                               "does not read; convert it to JPEG")


def test_training_skips_them_with_the_same_reasons(tmp_path):
    root = folder(tmp_path / "pics", per_class=10)
    (root / "cat" / "empty.jpg").write_bytes(b"")
    cut(write_image(root / "dog" / "cut.jpg", size=(64, 64), fmt="JPEG"), 0.5)
    with pytest.warns(UserWarning, match="skipped 2 of 22"):
        ds = load_image_folder(root, None, 8, 0.1)
    assert [(Path(s.path).name, s.reason) for s in ds.issues.skipped] == [
        ("empty.jpg", "file is empty (0 bytes)"), ("cut.jpg", f"the JPEG {TRUNCATED}")]


def test_unreadable_image_carries_path_and_reason(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(UnreadableImage) as info:
        read_image(tmp_path / "a.png", 3, None, DecodeSettings())
    assert info.value.issue().reason == "file is empty (0 bytes)" and not info.value.not_image


# ----------------------------------------------------------------------------- prediction

def transparent_png(path: Path) -> Path:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:12, 4:12] = (200, 20, 20, 255)  # an opaque square on a fully transparent background
    Image.fromarray(rgba, "RGBA").save(path)
    return path


@pytest.mark.parametrize("record, corner", [(None, 0), (DecodeSettings().record(), 255),
                                            (DecodeSettings(background=(0, 0, 0)).record(), 0)])
def test_the_predictor_decodes_with_the_recorded_background(trained_run, tmp_path, record, corner):
    from neuroclass.inference import Predictor

    predictor = Predictor.from_run(trained_run.path)
    predictor.meta["preprocessing"] = {k: v for k, v in predictor.meta.get("preprocessing", {}).items()
                                       if k != "decode"}
    # None: a model.json written before the record decodes as it did then (decoder version 1: the
    # alpha of the transparent black corner is dropped, not composited on the background)
    if record is not None:
        predictor.meta["preprocessing"]["decode"] = record
    x, _ = predictor.load_files([transparent_png(tmp_path / "t.png")])
    assert x.shape == (1, 3, 16, 16)
    assert (x[0, :, 0, 0] == corner).all() and x[0, :, 8, 8].tolist() == [200, 20, 20]


def test_an_unreadable_orientation_is_a_named_warning_and_the_pixels_as_stored(tmp_path):
    from PIL import ImageOps

    path = write_image(tmp_path / "x.png", exif=b"no TIFF header here")  # a PNG eXIf chunk of junk
    with Image.open(path) as img, pytest.raises(SyntaxError, match="not a TIFF file"):
        ImageOps.exif_transpose(img)
    x, warned = read_image(path, 3, None, DecodeSettings())
    with Image.open(path) as stored:
        assert np.array_equal(x, np.asarray(stored).transpose(2, 0, 1))
    assert [w.path for w in warned] == [str(path)]
    assert warned[0].reason.startswith("EXIF orientation unreadable (SyntaxError: not a TIFF file")
    assert read_header(path, 10**6) == ("RGB", (8, 8))


def deprecated_format_image(path: Path) -> tuple[Path, str]:
    """An image in a format whose reading Pillow deprecates (IM, deprecated in Pillow 12), and the
    warning; the test is skipped where the installed Pillow reads it without one, or not at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # writing an IM file is deprecated too
        try:
            write_image(path, fmt="IM")
        except (KeyError, OSError, ValueError) as exc:
            pytest.skip(f"this Pillow writes no IM files: {exc}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Image.open(path) as img:
            img.load()
    said = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    if not said:
        pytest.skip("this Pillow reads IM files without a DeprecationWarning")
    return path, said[0]


def test_deprecation_warnings_are_passed_on_not_blamed_on_the_file(tmp_path):
    path, said = deprecated_format_image(tmp_path / "x.im")
    with pytest.warns(DeprecationWarning) as caught:
        x, warned = read_image(path, 3, None, DecodeSettings())
    assert said in messages(caught) and warned == [] and x.shape == (3, 8, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_image(path, 3, (8, 8))
    assert caught and all(w.category is DeprecationWarning for w in caught), messages(caught)


def test_a_stopped_load_names_each_oversized_file_with_its_reason(tmp_path):
    root = folder(tmp_path / "pics", per_class=30)
    scan = write_image(root / "cat" / "scan.png", size=(30, 30))
    photo = write_image(root / "dog" / "photo.png", size=(20, 20))
    with pytest.raises(NeuroclassError) as info:
        load_image_folder(root, None, 8, 0.01, decode=DecodeSettings(max_pixels=100))
    line = str(info.value)
    assert "2 of 62 images are unreadable" in line and "--set data.max_bad_fraction=0.04" in line
    assert f"{scan}: 30x30 = 900 pixels is over the limit" in line
    assert f"{photo}: 20x20 = 400 pixels is over the limit" in line and "\n" not in line


# ----------------------------------------------------------------------------- wording

@pytest.mark.parametrize("n_bad, said", [
    (1, "skipped 1 of 21 images as unreadable: {0}: "),
    (2, "skipped 2 of 22 images as unreadable: {0}: "),
    (5, "skipped 5 of 25 images as unreadable: first 3 of 5: {0}: ")])
def test_skipped_files_are_worded_for_one_a_few_and_many(tmp_path, n_bad, said):
    root = folder(tmp_path / "pics", per_class=10)
    bad = [root / "cat" / f"bad{i}.png" for i in range(n_bad)]
    for path in bad:
        path.write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_image_folder(root, None, None, 0.5, cache=False)
    line = messages(caught)[0]
    assert said.format(bad[0]) in line, line
    assert "first:" not in line and ("more" in line) == (n_bad > 3)
    assert (f"and {n_bad - 3} more" in line) if n_bad > 3 else all(str(p) in line for p in bad)


def test_when_no_file_is_readable_the_files_are_named_without_first(tmp_path):
    root = folder(tmp_path / "pics", per_class=1)
    for path in root.rglob("*.png"):
        path.write_bytes(b"")
    with pytest.raises(NeuroclassError, match=r"none of the 2 image files is readable: .*0.png"):
        load_image_folder(root, None, None, 0.0, cache=False)
