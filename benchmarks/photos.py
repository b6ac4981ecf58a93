"""Photo folders under a time budget: the chosen input side against the photos' native size.

Each folder is trained with the command a user types, ``neuroclass train DIR --time-budget T``, in
a fresh process (so that imports, decoding and the report count, and its peak memory is its own):

  a  neuroclass defaults: the budget chooses the side, the family and the augmentation
  b  the same network (family and size as a chose) at the photos' native size: data.image_size set
     to the folder's median shorter side, everything else as a

Folders (written once to --work, reused after):

  shapes-3   400 photo-like JPEGs (data.synthetic_photos: a disc, star or triangle on textured
             backgrounds with clutter; 300-600 px, mixed sizes, a quarter stored sideways with an
             EXIF tag; train/ and val/)
  shapes-2   the same with 2 classes (disc, star), another seed
  sample     400 JPEG crops (300-600 px, random place, scale and mirror, quality 70-95) of the two
             real photographs scikit-learn ships (china.jpg, flower.jpg), one class each: real
             camera pixels, an easy task; no photo dataset can be downloaded here

Printed per run: the side, training images/s (timing.json), peak resident memory of the process
(getrusage of the child), wall time of the whole command against the budget, test accuracy and
chance (the largest class's share of the test split).

    python benchmarks/photos.py [--budget 3m] [--work /tmp/neuroclass-photos] [--only a] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from bench_table import format_table, machine_summary, settings_note
from neuroclass.config import parse_duration
from neuroclass.data.synthetic_photos import write_photo_folder

ROOT = Path(__file__).resolve().parent.parent


def sample_crops(out: Path, images: int, seed: int = 0) -> Path:
    """``images`` JPEG crops of scikit-learn's two sample photographs, one class per photograph."""
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    rng = np.random.default_rng(seed)
    tmp = out.with_name(out.name + ".part")
    for name, photo in zip(("china", "flower"), bunch.images):
        img = Image.fromarray(photo)  # 640x427
        for k in range(images // 2):
            split = "val" if k % 10 < 3 else "train"
            folder = tmp / split / name
            folder.mkdir(parents=True, exist_ok=True)
            w, h = (int(v) for v in rng.integers(200, 400, size=2))
            left, top = int(rng.integers(0, 640 - w)), int(rng.integers(0, 427 - h))
            crop = img.crop((left, top, left + w, top + h))
            scale = rng.uniform(300, 600) / max(w, h)
            crop = crop.resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC)
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crop.save(folder / f"{name}_{k:04d}.jpg", quality=int(rng.integers(70, 96)))
    tmp.rename(out)
    return out


def folders(work: Path, images: int) -> dict[str, Path]:
    made = {"shapes-3": work / f"shapes-3-{images}", "shapes-2": work / f"shapes-2-{images}",
            "sample": work / f"sample-{images}"}
    if not made["shapes-3"].exists():
        write_photo_folder(made["shapes-3"], images, 3, seed=0)
    if not made["shapes-2"].exists():
        write_photo_folder(made["shapes-2"], images, 2, seed=1)
    if not made["sample"].exists():
        sample_crops(made["sample"], images)
    return made


def run(data: Path, out: Path, budget: str, extra: list[str]) -> dict:
    """One ``neuroclass train`` in a child process: its wall time, peak memory and run folder."""
    probe = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    cmd = [sys.executable, "-c", probe, sys.executable, "-m", "neuroclass", "train", str(data),
           "--time-budget", budget, "--out", str(out), "--quiet", *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[4:])} failed:\n{done.stderr[-2000:]}")
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    folder = max((p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")),
                 key=lambda p: p.stat().st_mtime)
    return {"wall": wall, "peak_gb": peak_kb * 1024 / 1e9, "folder": folder}


def describe(result: dict) -> dict:
    folder = result["folder"]
    timing = json.loads((folder / "timing.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    support = [row["support"] for row in metrics.get("per_class", {}).values()] if isinstance(
        metrics.get("per_class"), dict) else []
    chance = max(support) / sum(support) if support else None
    return {**result, "side": cfg["data"]["image_size"], "model": f"{cfg['model']['name']} {cfg['model']['size']}",
            "rate": timing["train_examples_per_second"], "epochs": timing["epochs"],
            "accuracy": metrics["accuracy"], "chance": chance, "native": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="3m")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--work", type=Path, default=Path("/tmp/neuroclass-photos"))
    parser.add_argument("--only", default="a,b", help="contenders: a (defaults), b (native size)")
    parser.add_argument("--folders", default="shapes-3,shapes-2,sample")
    parser.add_argument("--quick", action="store_true", help="40 images, 20 s: a smoke test, no result")
    args = parser.parse_args()
    if args.quick:
        args.images, args.budget = 40, "20s"
    budget_s = parse_duration(args.budget)
    args.work.mkdir(parents=True, exist_ok=True)
    made = folders(args.work, args.images)
    rows = []
    for name in args.folders.split(","):
        data = made[name]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        a = describe(run(data, args.work / "runs" / f"{name}-a-{stamp}", args.budget, []))
        if "a" in args.only:
            rows.append((name, "a defaults", a))
        if "b" in args.only:
            from neuroclass.data.survey import survey_folder

            native = survey_folder(data).short_side
            family, size = a["model"].split()
            b = describe(run(data, args.work / "runs" / f"{name}-b-{stamp}", args.budget,
                             ["--model", family, "--set", f"model.size={size}",
                              "--set", f"data.image_size={native}"]))
            rows.append((name, "b same net, native side", b))
    table = [[name, who, r["model"], f"{r['side']}", f"{r['rate']:,.0f}", f"{r['epochs']}",
              f"{r['peak_gb']:.2f}", f"{r['wall']:.1f} / {budget_s:g}", f"{100 * r['accuracy']:.1f}",
              f"{100 * r['chance']:.0f}" if r["chance"] else "?"] for name, who, r in rows]
    print(machine_summary())
    print(f"neuroclass train DIR --time-budget {args.budget}; {args.images} images per folder"
          + settings_note(quick=args.quick))
    print(format_table(["folder", "contender", "model", "side px", "train img/s", "epochs", "peak GB",
                        "wall s / budget", "test acc %", "chance %"], table))


if __name__ == "__main__":
    main()
