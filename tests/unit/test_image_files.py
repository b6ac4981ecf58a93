"""Which files of an image folder are data (data/listing.py through load_image_folder).

Operating-system and tool metadata at every level (the top, split folders, class folders and
folders inside them) is never an image or a class; non-image files in class folders are not
images. Everything left out is in ``ds.issues.ignored`` with its reason and in ONE warning line.
"""
from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuroclass.data.folder import load_image_folder
from neuroclass.data.listing import HIDDEN, MACOS, NAS, TOOL, TRASH, WINDOWS, metadata_reason
from neuroclass.errors import NeuroclassError

APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64)


def png_bytes(seed: int, size: int = 8) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def clean_folder(root: Path, per_class: int = 4) -> Path:
    for k, name in enumerate(("cat", "dog")):
        for i in range(per_class):
            write(root / name / f"{i}.png", png_bytes(10 * k + i))
    return root


# every kind of metadata: (relative path, is a folder, reason); a folder holds an image inside
METADATA = [
    (".DS_Store", False, MACOS), ("._0.png", False, MACOS), ("__MACOSX", True, MACOS),
    ("Thumbs.db", False, WINDOWS), ("desktop.ini", False, WINDOWS), ("ehthumbs.db", False, WINDOWS),
    ("System Volume Information", True, WINDOWS), ("@eaDir", True, NAS), ("$RECYCLE.BIN", True, TRASH),
    (".Trash-1000", True, TRASH), (".ipynb_checkpoints", True, TOOL), (".git", True, TOOL),
    ("__pycache__", True, TOOL), (".hidden.png", False, HIDDEN), (".thumbnails", True, HIDDEN),
]


def plant(folder: Path, name: str, is_dir: bool, seed: int) -> str:
    """Put a metadata file, or a metadata folder holding an image, in ``folder``; its issue path."""
    if is_dir:
        write(folder / name / "copy-checkpoint.png", png_bytes(seed))  # would leak if read
        return f"{folder / name}/"
    write(folder / name, APPLE_DOUBLE if name.startswith("._") else png_bytes(seed))
    return str(folder / name)


def load(root: Path, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_image_folder(root, None, None, 0.0, **options)
    return ds, [str(w.message) for w in caught]


@pytest.mark.parametrize("name, is_dir, reason", METADATA, ids=[m[0] for m in METADATA])
@pytest.mark.parametrize("level", ["top", "class", "nested"])
def test_metadata_is_never_an_image_or_a_class(tmp_path, name, is_dir, reason, level):
    root = clean_folder(tmp_path / "pics")
    folder = {"top": root, "class": root / "cat", "nested": root / "dog" / "more"}[level]
    if level == "nested":
        write(folder / "extra.png", png_bytes(99))  # images in sub-folders of a class are data
    path = plant(folder, name, is_dir, seed=50)
    ds, lines = load(root)
    assert ds.classes == ["cat", "dog"]
    assert len(ds) == 8 + (level == "nested")
    assert [(i.path, i.reason) for i in ds.issues.ignored] == [(path, reason)]
    assert len(lines) == 1 and lines[0].startswith(f"{root}: ignored 1 ") and reason in lines[0], lines


def test_metadata_in_split_folders_and_beside_them(tmp_path):
    root = tmp_path / "pics"
    clean_folder(root / "train")
    clean_folder(root / "test", per_class=2)
    for folder in (root, root / "train", root / "test", root / "test" / "dog"):
        plant(folder, ".DS_Store", False, seed=1)
        plant(folder, "__MACOSX", True, seed=2)
    write(root / "notes" / "a.png", png_bytes(3))  # a folder that is not a split
    ds, lines = load(root)
    assert ds.classes == ["cat", "dog"]
    assert {k: len(v) for k, v in ds.parts.items()} == {"train": 8, "test": 4}
    reasons = [i.reason for i in ds.issues.ignored]
    assert reasons.count(MACOS) == 8 and "outside the split folders (train/, val/, test/)" in reasons
    assert len(lines) == 1, lines
    assert "ignored 5 folders (holding 5 files) and 4 files that are not data" in lines[0]


def test_notebook_checkpoint_copies_do_not_leak_into_the_data(tmp_path):
    root = clean_folder(tmp_path / "pics")
    for i in range(3):  # copies of cat images, as Jupyter leaves them
        original = (root / "cat" / f"{i}.png").read_bytes()
        write(root / "cat" / ".ipynb_checkpoints" / f"{i}-checkpoint.png", original)
    write(root / ".ipynb_checkpoints" / "Untitled-checkpoint.ipynb", b"{}")
    ds, lines = load(root)
    assert len(ds) == 8 and ds.classes == ["cat", "dog"]
    assert lines == [f"{root}: ignored 2 folders (holding 4 files) that are not data: 2 {TOOL}"]


def test_a_finder_zip_extracts_a_macosx_folder_that_is_not_a_class(tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for k, name in enumerate(("cat", "dog")):
            for i in range(3):
                z.writestr(f"{name}/{i}.png", png_bytes(10 * k + i))
                z.writestr(f"__MACOSX/{name}/._{i}.png", APPLE_DOUBLE)
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path / "pics")
    ds, lines = load(tmp_path / "pics")
    assert ds.classes == ["cat", "dog"] and len(ds) == 6
    assert lines == [f"{tmp_path / 'pics'}: ignored 1 folder (holding 6 files) that is not data: 1 {MACOS}"]


def test_non_image_files_in_class_folders_are_listed_with_their_suffix(tmp_path):
    root = clean_folder(tmp_path / "pics")
    write(root / "cat" / "README.md", b"# cats\n")
    write(root / "dog" / "labels.txt", b"dog\n")
    write(root / "dog" / "LICENSE", b"CC-BY\n")
    write(root / "README.md", b"# pics\n")
    ds, lines = load(root)
    assert len(ds) == 8
    assert sorted((Path(i.path).name, i.reason) for i in ds.issues.ignored) == [
        ("LICENSE", "non-image (no suffix)"), ("README.md", "non-image (.md)"),
        ("README.md", "outside the class folders"), ("labels.txt", "non-image (.txt)")]
    assert lines == [f"{root}: ignored 4 files that are not data: 1 non-image (.md), "
                     "1 non-image (.txt), 1 non-image (no suffix), 1 outside the class folders"]


def test_the_ignored_line_groups_reasons_most_common_first(tmp_path):
    root = clean_folder(tmp_path / "pics")
    for name in ("cat", "dog"):
        for i in range(2):
            write(root / name / f"._{i}.png", APPLE_DOUBLE)
    write(root / "cat" / ".secret.png", png_bytes(1))
    ds, lines = load(root)
    assert lines == [f"{root}: ignored 5 files that are not data: 4 {MACOS}, 1 {HIDDEN}"]


def test_a_clean_folder_ignores_nothing_and_says_nothing(tmp_path):
    ds, lines = load(clean_folder(tmp_path / "pics"))
    assert lines == [] and not ds.issues


def test_a_class_folder_holding_only_metadata_has_no_images(tmp_path):
    root = clean_folder(tmp_path / "pics")
    write(root / "zebra" / ".DS_Store", b"\x00\x00\x00\x01Bud1")
    write(root / "zebra" / "._0.png", APPLE_DOUBLE)
    with pytest.raises(NeuroclassError, match="zebra: class folder has no images"):
        load(root)


def test_the_cache_keeps_working_and_repeats_the_ignored_line(tmp_path):
    root = clean_folder(tmp_path / "pics")
    plant(root / "cat", ".ipynb_checkpoints", True, seed=1)
    first, lines = load(root)
    second, again = load(root)
    assert (first.preprocessing["cache"], second.preprocessing["cache"]) == ("built", "hit")
    assert len(second) == 8 and second.issues.ignored == first.issues.ignored and again == lines


@pytest.mark.parametrize("name, expected", [
    ("cat.png", None), ("Thumbs.DB", WINDOWS), ("DESKTOP.INI", WINDOWS), ("@eaDir", NAS),
    ("icon\r", MACOS), ("._", MACOS), (".Trash", TRASH), ("#recycle", TRASH), ("_private", None)])
def test_metadata_names(name, expected):
    assert metadata_reason(name) == expected


def test_other_formats_pillow_reads_are_images_and_unread_ones_are_said_so(tmp_path):
    root = tmp_path / "pics"
    for k, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i, suffix in enumerate((".ppm", ".tga", ".pgm")):
            img = Image.open(io.BytesIO(png_bytes(10 * k + i)))
            img.convert("L" if suffix == ".pgm" else "RGB").save(root / name / f"{i}{suffix}")
    write(root / "cat" / "IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic" + bytes(16))
    ds, lines = load(root)
    assert len(ds) == 6 and ds.input_shape == (3, 8, 8)
    assert [(Path(i.path).name, i.reason) for i in ds.issues.ignored] == [
        ("IMG_0001.HEIC", "HEIC image, a format not read (convert it to JPEG or PNG)")]


def test_a_test_class_missing_from_train_names_both_fixes(tmp_path):
    root = tmp_path / "shapes"
    for split, names in (("train", ("circle", "square")), ("test", ("circle", "square", "cross"))):
        for name in names:
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((6, 6, 3), 40 * i, np.uint8)).save(root / split / name / f"{i}.png")
    with pytest.raises(NeuroclassError) as err:
        load_image_folder(root, None, None, 0.0, cache=False)
    text = str(err.value)
    assert text.startswith(f"{root / 'test'}: class 'cross' is not in train/")
    assert f"add train/ examples of it (e.g. {root / 'train' / 'cross'}/)" in text
    assert f"or remove the folder {root / 'test' / 'cross'}" in text
