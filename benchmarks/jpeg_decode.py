"""Decoding photo-sized JPEGs to a small training size: images/s.

Photo-like JPEGs (smooth gradients, a disc and noise, quality 90) are written to a temporary folder,
then each contender decodes every file to (3, SIZE, SIZE) uint8, one at a time on one thread:

  a  neuroclass read_image, decoder 3: JPEG decoded at a reduced DCT scale (draft), then resized
  b  neuroclass read_image, decoder 2: full-scale decode, then resized (what runs before used)
  c  Pillow alone: open, convert("RGB"), resize (no orientation, no alpha handling)
  d  torchvision.io.decode_jpeg + torchvision.transforms.v2.functional.resize (antialiased)

    python benchmarks/jpeg_decode.py [--images 40] [--width 1600] [--height 1200] [--size 64] [--quick]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_table import format_table, machine_summary, settings_note
from neuroclass.data.images import read_image
from neuroclass.data.pixels import DecodeSettings


def write_photos(folder: Path, count: int, width: int, height: int) -> list[Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    paths = []
    for i in range(count):
        cy, cx, r = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width, height / 5
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < r ** 2
        rgb = np.stack([xx * 255 / width, yy * 255 / height, np.where(disc, 220, 40)], axis=-1)
        rgb = np.clip(rgb + rng.normal(0, 6, size=rgb.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo{i:03d}.jpg"
        Image.fromarray(rgb).save(path, quality=90)
        paths.append(path)
    return paths


def pillow_alone(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))


def torchvision_decode(path: Path, size: int) -> torch.Tensor:
    from torchvision.io import decode_jpeg, read_file
    from torchvision.transforms.v2 import functional

    return functional.resize(decode_jpeg(read_file(str(path))), [size, size], antialias=True)


def measure(decode, paths: list[Path]) -> float:
    """Images/s over every file, best of three passes."""
    decode(paths[0])  # one-off costs (imports, codec set-up) left out
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for path in paths:
            decode(path)
        best = max(best, len(paths) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="6 small files: a smoke test, no result")
    args = parser.parse_args()
    if args.quick:
        args.images, args.width, args.height = 6, 400, 300
    torch.set_num_threads(1)
    target = (args.size, args.size)
    contenders = [
        ("a neuroclass, decoder 3 (draft)", lambda p: read_image(p, 3, target, DecodeSettings(version=3))[0]),
        ("b neuroclass, decoder 2 (full)", lambda p: read_image(p, 3, target, DecodeSettings(version=2))[0]),
        ("c Pillow convert + resize", lambda p: pillow_alone(p, args.size)),
        ("d torchvision decode_jpeg + resize", lambda p: torchvision_decode(p, args.size)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(Path(tmp), args.images, args.width, args.height)
        rates = [(name, measure(decode, paths)) for name, decode in contenders]
    rows = [[name, f"{rate:,.1f}", f"{rate / rates[1][1]:.2f}"] for name, rate in rates]
    print(machine_summary())
    print(f"{args.images} JPEGs of {args.width}x{args.height} (quality 90) -> 3x{args.size}x{args.size}, one thread"
          + settings_note(quick=args.quick))
    print(format_table(["contender", "images/s", "vs b"], rows))


if __name__ == "__main__":
    main()
