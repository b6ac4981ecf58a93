"""End to end on messy image folders (marked slow, about 8 s): a model trained on upright images
with light backgrounds scores on EXIF-rotated and transparent copies as on their controls, and a
folder full of operating-system metadata trains on the images alone."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuroclass.cli import main

pytestmark = pytest.mark.slow

SIZE = 24
CLASSES = ("horizontal", "vertical")


def bars(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A dark bar on a light, noisy background, uint8 (H, W, 3): the two classes differ only by
    the bar's direction, so an image read sideways is read as the other class."""
    a = np.empty((SIZE, SIZE, 3), np.int16)
    a[:] = rng.integers(190, 256, 3)
    p = int(rng.integers(2, SIZE - 8))
    if kind == "horizontal":
        a[p:p + 6, 3:SIZE - 3] = rng.integers(0, 60, 3)
    else:
        a[3:SIZE - 3, p:p + 6] = rng.integers(0, 60, 3)
    a += rng.integers(-8, 9, a.shape).astype(np.int16)
    return np.clip(a, 0, 255).astype(np.uint8)


def write_sets(root: Path) -> None:
    rng = np.random.default_rng(0)
    for c in CLASSES:
        for sub in ("data", "upright", "exif", "flat", "transparent"):
            (root / sub / c).mkdir(parents=True)
        for i in range(50):
            Image.fromarray(bars(c, rng)).save(root / "data" / c / f"{i}.png")
        for i in range(16):
            shown = bars(c, rng)
            Image.fromarray(shown).save(root / "upright" / c / f"{i}.png")
            tag = 6 if i % 2 else 8  # 6: a viewer turns the stored pixels 90 degrees clockwise
            exif = Image.Exif()
            exif[0x0112] = tag
            stored = np.ascontiguousarray(np.rot90(shown, 1 if tag == 6 else -1))
            Image.fromarray(stored).save(root / "exif" / c / f"{i}.png", exif=exif.tobytes())
            bar = shown.mean(axis=2) < 110
            rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
            rgba[bar, :3], rgba[bar, 3] = shown[bar], 255
            Image.fromarray(rgba, "RGBA").save(root / "transparent" / c / f"{i}.png")
            flat = np.where(bar[..., None], shown, 255).astype(np.uint8)
            Image.fromarray(flat).save(root / "flat" / c / f"{i}.png")
    for c in CLASSES:  # what real folders carry beside the images
        (root / "data" / c / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (root / "data" / c / ".ipynb_checkpoints").mkdir()
        Image.fromarray(bars(CLASSES[0], rng)).save(root / "data" / c / ".ipynb_checkpoints" / "x.png")
    (root / "data" / "__MACOSX").mkdir()
    (root / "data" / "__MACOSX" / "._0.png").write_bytes(b"\x00\x05\x16\x07")


def accuracy(run: Path, data: Path, capsys) -> float:
    assert main(["evaluate", str(run), "--data", str(data), "--json", "--no-report"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"]


def test_rotated_and_transparent_copies_score_like_their_controls(tmp_path, capsys):
    write_sets(tmp_path)
    out = tmp_path / "runs"
    rc = main(["train", str(tmp_path / "data"), "--out", str(out), "--model", "cnn", "--epochs", "8",
               "--quiet", "--set", "train.threads=1", "--set", "model.options.channels=[8,16]"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "ignored 3 folders (holding 3 files) and 2 files that are not data" in err
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    record = json.loads((run / "model.json").read_text())["preprocessing"]["decode"]
    assert record["version"] == 4 and record["background"] == [255, 255, 255] and record["aspect"] == "crop"
    upright, flat = accuracy(run, tmp_path / "upright", capsys), accuracy(run, tmp_path / "flat", capsys)
    assert upright >= 0.75 and flat >= 0.75  # read sideways, a copy is the other class: far below
    assert accuracy(run, tmp_path / "exif", capsys) == upright
    assert accuracy(run, tmp_path / "transparent", capsys) == flat
