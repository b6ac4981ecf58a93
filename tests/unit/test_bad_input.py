"""Bad input through the CLI, in-process: exit code 2, one clear error line, nothing left behind.

Every bad input is built from scratch in ``tmp_path`` (tiny PNGs, CSVs, IDX bytes). For each case we
check: exit code 2; stderr is exactly one line starting with ``neuroclass: error:`` that names the
offending file / column / option and the fix (key words, not the whole sentence); no traceback; and
no run folder or ``.partial-*`` folder in ``--out``.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from neuroclass.cli import main
from neuroclass.errors import NeuroclassError

# A tiny, fast model and schedule: one epoch of a 16-unit MLP.
FAST = ["--model", "mlp", "--set", "model.options.hidden=[16]", "--epochs", "1", "--quiet"]


# ----------------------------------------------------------------------------- helpers

def train(tmp_path: Path, data, *extra: str) -> int:
    """``neuroclass train DATA --out tmp_path/runs`` with the tiny model, plus ``extra`` options."""
    return main(["train", str(data), "--out", str(tmp_path / "runs"), *FAST, *extra])


def assert_bad_input(rc: int, capsys, *words: str, out: Path | None = None) -> str:
    """Exit 2, one 'neuroclass: error:' line holding every word in ``words``, no run folder left."""
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("neuroclass: error:"), line
    for word in words:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    if out is not None:
        assert_no_run_folder(out)
    return line


def assert_no_run_folder(out: Path) -> None:
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert left == [], f"left behind in --out: {left}"


def write_png(path: Path, value: int, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    pixels = np.clip(rng.normal(value, 10, size=(size, size)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path)


def image_folder(root: Path, per_class: int, classes=("dark", "light")) -> Path:
    """``root/<class>/<i>.png``: 8x8 grayscale images, dark and light, easy to tell apart."""
    for k, name in enumerate(classes):
        for i in range(per_class):
            write_png(root / name / f"{i:03d}.png", 40 + 170 * k)
    return root


def corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a PNG file\n" * 4)
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """A uint8 IDX file: magic 00 00 08 <ndim>, big-endian uint32 dims, then the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def idx_folder(root: Path, n: int = 40) -> Path:
    """A valid small pair: ``train-images-idx3-ubyte`` (n, 6, 6) and ``train-labels-idx1-ubyte``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    images = rng.integers(0, 256, size=(n, 6, 6))
    (root / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (root / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    return root


def table(tmp_path: Path, name: str = "data.csv", n: int = 40, **columns) -> Path:
    """A CSV with numeric features f1, f2 and a two-class label column, plus ``columns``."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"f1": rng.normal(size=n), "f2": rng.normal(size=n),
                       "label": np.where(np.arange(n) % 2 == 0, "cat", "dog")})
    for key, values in columns.items():
        df[key] = values
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished run folder of the tiny MLP on 64 8x8 blocks images (about a second)."""
    out = tmp_path_factory.mktemp("runs")
    rc = main(["train", "blocks:n=64,size=8", "--out", str(out), *FAST])
    assert rc == 0
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


@pytest.fixture(scope="module")
def tiny_table_run(tmp_path_factory) -> Path:
    """A finished run folder of the tiny MLP on a 40-row CSV (features f1, f2; label cat/dog)."""
    folder = tmp_path_factory.mktemp("table")
    out = folder / "runs"
    rc = main(["train", str(table(folder)), "--label-column", "label", "--out", str(out), *FAST])
    assert rc == 0
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


# ----------------------------------------------------------------------------- 1. missing path

def test_missing_path(tmp_path, capsys):
    missing = tmp_path / "no-such-data"
    rc = train(tmp_path, missing)
    assert_bad_input(rc, capsys, "no-such-data", "no such file or folder", "built-in",
                     out=tmp_path / "runs")


def test_missing_path_near_builtin_name_suggests_it(tmp_path, capsys):
    rc = train(tmp_path, "fashion-mnst")
    assert_bad_input(rc, capsys, "fashion-mnst", "did you mean 'fashion-mnist'", out=tmp_path / "runs")


# ----------------------------------------------------------------------------- 2./3. folders

def test_empty_folder(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = train(tmp_path, empty)
    assert_bad_input(rc, capsys, "empty", "folder is empty", "sub-folder", out=tmp_path / "runs")


def test_class_folder_without_images(tmp_path, capsys):
    root = image_folder(tmp_path / "pics", per_class=5)
    (root / "zebra").mkdir()
    (root / "zebra" / "notes.txt").write_text("no images here")
    rc = train(tmp_path, root)
    assert_bad_input(rc, capsys, "zebra", "no images", "add images or remove it", out=tmp_path / "runs")


# ----------------------------------------------------------------------------- 4. corrupt images

def test_one_corrupt_image_among_many_is_skipped_with_a_warning(tmp_path, capsys):
    root = image_folder(tmp_path / "pics", per_class=60)  # 120 good images
    corrupt(root / "dark" / "broken.png")  # 1 of 121: under the 1% default
    rc = train(tmp_path, root)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Traceback" not in captured.err
    warnings = [line for line in captured.err.splitlines() if line.startswith("neuroclass: warning:")]
    assert len(warnings) == 1, captured.err
    assert "skipped 1 of 121 images" in warnings[0]
    assert "broken.png" in warnings[0]
    assert "neuroclass: error" not in captured.err
    runs = [p for p in (tmp_path / "runs").iterdir()]
    assert len(runs) == 1 and not runs[0].name.startswith(".partial-")


def test_too_many_corrupt_images_abort(tmp_path, capsys):
    root = image_folder(tmp_path / "pics", per_class=10)
    for i in range(3):
        corrupt(root / "light" / f"broken{i}.png")  # 3 of 23 = 13%
    rc = train(tmp_path, root)
    assert_bad_input(rc, capsys, str(root), "3 of 23", "unreadable", "broken0.png",
                     "remove or replace them", "--set data.max_bad_fraction=0.14", out=tmp_path / "runs")


def test_class_folder_whose_only_image_is_corrupt(tmp_path, capsys):
    root = image_folder(tmp_path / "pics", per_class=60)
    corrupt(root / "zebra" / "only.png")  # 1 of 121 is allowed, but it empties a class
    rc = train(tmp_path, root)
    err = assert_bad_input(rc, capsys, "zebra", "no readable images left", "add images or remove it",
                           out=tmp_path / "runs")
    assert "warning" not in err


def test_all_images_corrupt(tmp_path, capsys):
    root = tmp_path / "pics"
    for name in ("a", "b"):
        corrupt(root / name / "x.png")
    rc = train(tmp_path, root)
    assert_bad_input(rc, capsys, str(root), "none of the 2", "x.png", "PNG, JPEG", out=tmp_path / "runs")


def test_corrupt_image_threshold_can_be_raised(tmp_path, capsys):
    root = image_folder(tmp_path / "pics", per_class=10)
    for i in range(3):
        corrupt(root / "light" / f"broken{i}.png")
    rc = train(tmp_path, root, "--set", "data.max_bad_fraction=0.2")
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "skipped 3 of 23 images" in err


# ----------------------------------------------------------------------------- 5. IDX files

def test_valid_idx_pair_loads(tmp_path):
    from neuroclass.config import DataConfig
    from neuroclass.data import load

    ds = load(DataConfig(source=str(idx_folder(tmp_path / "idx"))))
    assert ds.input_shape == (1, 6, 6) and len(ds) == 40 and ds.classes == ["0", "1"]


def test_idx_wrong_magic(tmp_path, capsys):
    root = idx_folder(tmp_path / "idx")
    images = root / "train-images-idx3-ubyte"
    images.write_bytes(b"\x12\x34\x56\x78" + images.read_bytes()[4:])
    rc = train(tmp_path, root)
    assert_bad_input(rc, capsys, "train-images-idx3-ubyte", "magic", "12345678", "0000080",
                     "re-download", out=tmp_path / "runs")


def test_idx_truncated(tmp_path, capsys):
    root = idx_folder(tmp_path / "idx")
    images = root / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-50])
    rc = train(tmp_path, root)
    assert_bad_input(rc, capsys, "train-images-idx3-ubyte", "truncated", "re-download",
                     out=tmp_path / "runs")


def test_idx_truncated_header(tmp_path, capsys):
    root = idx_folder(tmp_path / "idx")
    (root / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00")
    rc = train(tmp_path, root)
    assert_bad_input(rc, capsys, "train-labels-idx1-ubyte", "truncated", "re-download",
                     out=tmp_path / "runs")


def test_idx_image_label_count_mismatch(tmp_path, capsys):
    root = idx_folder(tmp_path / "idx")
    (root / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(39) % 2))
    rc = train(tmp_path, root)
    assert_bad_input(rc, capsys, "train-images-idx3-ubyte", "40 images", "train-labels-idx1-ubyte",
                     "39 labels", "labels file that belongs to these images", out=tmp_path / "runs")


def test_idx_corrupt_gzip(tmp_path, capsys):
    import gzip

    root = idx_folder(tmp_path / "idx")
    images = root / "train-images-idx3-ubyte"
    packed = gzip.compress(images.read_bytes())
    images.unlink()
    broken = packed[:10] + bytes(255 - b for b in packed[10:-8]) + packed[-8:]  # bad deflate data
    (root / "train-images-idx3-ubyte.gz").write_bytes(broken)
    rc = train(tmp_path, root)
    assert_bad_input(rc, capsys, "train-images-idx3-ubyte.gz", "cannot read IDX", "re-download",
                     out=tmp_path / "runs")


# ----------------------------------------------------------------------------- 6. CSV tables

def test_csv_label_column_missing_suggests_a_close_name(tmp_path, capsys):
    path = table(tmp_path)
    rc = train(tmp_path, path, "--label-column", "lable")
    assert_bad_input(rc, capsys, "data.csv", "no label column 'lable'", "did you mean 'label'",
                     "f1, f2, label", out=tmp_path / "runs")


def test_csv_without_label_column_option(tmp_path, capsys):
    path = table(tmp_path)
    rc = train(tmp_path, path)
    assert_bad_input(rc, capsys, "data.csv", "--label-column", "f1, f2, label", out=tmp_path / "runs")


def test_csv_with_nan_and_missing_error(tmp_path, capsys):
    f2 = np.arange(40, dtype=float)
    f2[7] = np.nan
    path = table(tmp_path, f2=f2)
    rc = train(tmp_path, path, "--label-column", "label", "--set", "data.missing=error")
    assert_bad_input(rc, capsys, "data.csv", "column 'f2' has a missing value in 1 row",
                     "(first at line 9 (data row 8))", "data.missing=impute",
                     out=tmp_path / "runs")


def test_csv_with_inf(tmp_path, capsys):
    f1 = np.arange(40, dtype=float)
    f1[3] = np.inf
    path = table(tmp_path, f1=f1)
    rc = train(tmp_path, path, "--label-column", "label")
    assert_bad_input(rc, capsys, "data.csv", "column 'f1' is infinite", "at line 5 (data row 4);",
                     "fill or drop",
                     out=tmp_path / "runs")


def test_csv_with_undeclared_text_column_and_gaps_trains(tmp_path, capsys):
    f2 = np.arange(40, dtype=float)
    f2[7] = np.nan
    path = table(tmp_path, colour=["red", "green", "blue", "red"] * 10, f2=f2)
    rc = train(tmp_path, path, "--label-column", "label")
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "neuroclass: error" not in err


def test_csv_with_one_typo_in_a_numeric_column(tmp_path, capsys):
    f1 = [str(v) for v in range(40)]
    f1[12] = "3.1x"
    path = table(tmp_path, f1=f1)
    rc = train(tmp_path, path, "--label-column", "label")
    assert_bad_input(rc, capsys, "data.csv", "column 'f1' is not numeric", "line 14 (data row 13) holds", "'3.1x'",
                     out=tmp_path / "runs")


def test_csv_text_column_declared_categorical_trains(tmp_path, capsys):
    path = table(tmp_path, colour=["red", "green", "blue", "red"] * 10)
    rc = train(tmp_path, path, "--label-column", "label", "--set", "data.categorical=[colour]")
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "neuroclass: error" not in err


# ----------------------------------------------------------------------------- 7. one class

def test_folder_with_only_one_class(tmp_path, capsys):
    root = tmp_path / "pics"
    for i in range(10):
        write_png(root / "cat" / f"{i}.png", 100)
    rc = train(tmp_path, root)
    assert_bad_input(rc, capsys, str(root), "only one class", "'cat'", "add examples of another class",
                     out=tmp_path / "runs")


def test_csv_with_only_one_class(tmp_path, capsys):
    path = table(tmp_path, label=["cat"] * 40)
    rc = train(tmp_path, path, "--label-column", "label")
    assert_bad_input(rc, capsys, "data.csv", "only one class", "'cat'", "add examples of another class",
                     out=tmp_path / "runs")


# ----------------------------------------------------------------------------- 8./9. config

def test_unknown_model_name_suggests_one(tmp_path, capsys):
    rc = main(["train", "blocks:n=32,size=8", "--out", str(tmp_path / "runs"), "--model", "resnt",
               "--epochs", "1", "--quiet"])
    assert_bad_input(rc, capsys, "unknown model 'resnt'", "did you mean 'resnet'", "mlp",
                     out=tmp_path / "runs")


def test_unknown_config_key_suggests_one(tmp_path, capsys):
    rc = train(tmp_path, "blocks:n=32,size=8", "--set", "optim.lrr=0.1")
    assert_bad_input(rc, capsys, "optim.lrr", "did you mean 'optim.lr'", out=tmp_path / "runs")


def test_unknown_model_option_suggests_one(tmp_path, capsys):
    rc = main(["train", "blocks:n=32,size=8", "--out", str(tmp_path / "runs"), "--model", "mlp",
               "--set", "model.options.hiden=[8]", "--epochs", "1", "--quiet"])
    assert_bad_input(rc, capsys, "model.options.hiden", "did you mean 'model.options.hidden'", out=tmp_path / "runs")


def test_negative_learning_rate(tmp_path, capsys):
    rc = train(tmp_path, "blocks:n=32,size=8", "--set", "optim.lr=-1")
    assert_bad_input(rc, capsys, "The 'optim.lr' parameter must be > 0. Got -1.0 instead.",
                     out=tmp_path / "runs")


# ----------------------------------------------------------------------------- 10. other options

def test_time_budget_not_a_duration(tmp_path, capsys):
    rc = train(tmp_path, "blocks:n=32,size=8", "--time-budget", "abc")
    assert_bad_input(rc, capsys, "time budget", "'abc'", "90s", out=tmp_path / "runs")


def test_missing_config_file(tmp_path, capsys):
    rc = train(tmp_path, "blocks:n=32,size=8", "--config", str(tmp_path / "nope.yaml"))
    assert_bad_input(rc, capsys, "nope.yaml", "does not exist", "--config", out=tmp_path / "runs")


def test_predict_with_missing_run_folder(tmp_path, capsys):
    image = tmp_path / "x.png"
    write_png(image, 100)
    rc = main(["predict", str(tmp_path / "no-run"), str(image)])
    assert_bad_input(rc, capsys, "no-run", "no such run folder", "neuroclass train")


def test_predict_with_corrupt_image(tiny_run, tmp_path, capsys):
    bad = corrupt(tmp_path / "bad.png")
    rc = main(["predict", str(tiny_run), str(bad)])
    line = assert_bad_input(rc, capsys, "bad.png", "not a PNG image: its content is text", "pass a PNG, JPEG")
    assert line.count("bad.png") == 1  # PIL's message repeats the path; ours names it once


def test_predict_with_missing_image(tiny_run, tmp_path, capsys):
    rc = main(["predict", str(tiny_run), str(tmp_path / "gone.png")])
    assert_bad_input(rc, capsys, "gone.png", "file not found")


def test_predict_csv_with_text_in_a_numeric_column(tiny_table_run, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"f1": [0.1, 0.2, 0.3], "f2": ["1.5", "n/a?", "2"]}).to_csv(rows, index=False)
    rc = main(["predict", str(tiny_table_run), str(rows)])
    assert_bad_input(rc, capsys, "rows.csv", "column 'f2' is not numeric", "line 3 (data row 2) holds",
                     "'n/a?'",
                     "convert it to numbers")


def test_predict_csv_with_nan_fills_it_as_training_did(tiny_table_run, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"f1": [0.1, np.nan, 0.3], "f2": [1.0, 2.0, 3.0]}).to_csv(rows, index=False)
    rc = main(["predict", str(tiny_table_run), str(rows)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "rows.csv:2" in captured.out


def test_evaluate_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    rc = main(["evaluate", str(folder)])
    assert_bad_input(rc, capsys, "not-a-run", "model.json", "neuroclass train")


# ----------------------------------------------------------------------------- --debug

def test_debug_re_raises(tmp_path, capsys):
    with pytest.raises(NeuroclassError, match="no-such-data"):
        main(["train", str(tmp_path / "no-such-data"), "--out", str(tmp_path / "runs"), "--debug"])
    assert "neuroclass: error" not in capsys.readouterr().err
    assert_no_run_folder(tmp_path / "runs")


# ----------------------------------------------------------------------------- .npz (beyond the issue)

@pytest.mark.parametrize("damage", ["truncated", "junk", "flipped"])
def test_damaged_npz(tmp_path, capsys, damage):
    path = tmp_path / "arrays.npz"
    np.savez_compressed(path, x=np.zeros((20, 6, 6), np.uint8), y=np.arange(20) % 2)
    raw = path.read_bytes()
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "junk":
        raw = b"not a zip archive " * 8
    else:  # flip the bytes of the compressed data, keep the zip structure
        raw = raw[:60] + bytes(255 - b for b in raw[60:120]) + raw[120:]
    path.write_bytes(raw)
    rc = train(tmp_path, path)
    assert_bad_input(rc, capsys, "arrays.npz", "cannot read .npz", "numpy.savez", out=tmp_path / "runs")


def test_predict_with_empty_image(tiny_run, tmp_path, capsys):
    empty = tmp_path / "download_failed.jpg"
    empty.write_bytes(b"")
    rc = main(["predict", str(tiny_run), str(empty)])
    line = assert_bad_input(rc, capsys, "download_failed.jpg", "file is empty (0 bytes)")
    assert "pass a PNG" not in line


@pytest.mark.parametrize("suffix, fmt", [(".jpg", "JPEG"), (".png", "PNG")])
def test_predict_with_truncated_image(tiny_run, tmp_path, capsys, suffix, fmt):
    path = tmp_path / f"cut{suffix}"
    pixels = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rc = main(["predict", str(tiny_run), str(path)])
    assert_bad_input(rc, capsys, f"cut{suffix}: the {fmt} data is truncated: the file ends early; "
                     "re-export or re-download it")
