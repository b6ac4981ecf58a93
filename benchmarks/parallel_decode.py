"""Decoding a photo folder on 1, 2, ... threads: images/s and the peak memory the decode adds.

A folder of photo-like JPEGs (data/synthetic_photos.py: 300-600 pixels a side, many sizes, some
stored sideways) is written once; each worker count then decodes every file to (3, SIZE, SIZE)
with ``images.decode_many`` (headers, then pixels) in a fresh process, best of three passes, and
reports the peak resident memory that process reached during the decode above what it held before
(VmHWM after minus VmRSS after a warm-up decode of 4 files; the output array is part of it).

    python benchmarks/parallel_decode.py [--images 400] [--size 64] [--workers 1,2] [--aspect crop]
                                         [--folder PATH] [--quick]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_table import format_table, machine_summary, settings_note


def status_mib(field: str) -> float:
    """A memory line of /proc/self/status (Linux): VmRSS (resident now), VmHWM (the peak of this
    program's memory; unlike ru_maxrss, not inherited from the parent that started it)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def one_count(folder: Path, workers: int, size: int, aspect: str) -> dict:
    """In this process: decode the folder three times on ``workers`` threads."""
    from neuroclass.data.images import decode_many
    from neuroclass.data.pixels import DecodeSettings

    paths = sorted(folder.rglob("*.jpg"))
    decode_many(paths[:4], 3, (size, size), 0.0, str(folder), DecodeSettings(aspect=aspect))  # imports, codecs
    before = status_mib("VmRSS")
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        done = decode_many(paths, 3, (size, size), 0.0, str(folder), DecodeSettings(aspect=aspect),
                           workers=workers)
        best = max(best, len(done.kept) / (time.perf_counter() - start))
        images, output_mib = len(done.kept), done.x.nbytes / 2**20
        del done  # one output at a time
    peak = status_mib("VmHWM")
    return {"workers": workers, "images": images, "rate": best, "added_mib": peak - before,
            "output_mib": output_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--aspect", default="crop", choices=("crop", "pad", "stretch"))
    parser.add_argument("--folder", type=Path, help="an existing photo folder to decode instead")
    parser.add_argument("--quick", action="store_true", help="24 images: a smoke test, no result")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one count
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_count(args.folder, args.one, args.size, args.aspect)))
        return
    if args.quick:
        args.images = 24
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder
        if folder is None:
            from neuroclass.data.synthetic_photos import write_photo_folder
            folder = write_photo_folder(Path(tmp) / "photos", images=args.images, classes=3)
        runs = []
        for workers in (int(w) for w in args.workers.split(",")):
            child = subprocess.run([sys.executable, __file__, "--one", str(workers), "--folder", str(folder),
                                    "--size", str(args.size), "--aspect", args.aspect],
                                   check=True, capture_output=True, text=True)
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
    base = runs[0]["rate"]
    rows = [[r["workers"], f"{r['rate']:,.1f}", f"{r['rate'] / base:.2f}", f"{r['added_mib']:.1f}",
             f"{r['output_mib']:.1f}"] for r in runs]
    print(machine_summary())
    print(f"{runs[0]['images']} photo JPEGs of 300-600 px -> 3x{args.size}x{args.size} ({args.aspect}), "
          "best of 3 passes" + settings_note(quick=args.quick))
    print(format_table(["threads", "images/s", f"vs {runs[0]['workers']}", "peak MiB added", "output MiB"],
                       rows))


if __name__ == "__main__":
    main()
