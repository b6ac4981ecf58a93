"""Throughput of every registered model at 28x28x1, 10 classes: images/s, FLOPs, share of matmul peak.

For each model family (default options, or every named size with --sizes): training images/s (forward + backward + AdamW step,
channels_last), inference images/s (eval, inference_mode), forward FLOPs per image
(torch.utils.flop_counter; a training step counts 3x forward), the GFLOP/s these achieve, and that
as a percentage of the fp32 matmul peak measured in the same run (best of several 2048x2048 matmuls).

    python benchmarks/throughput.py [--batch-size 128] [--steps 20] [--models cnn,mlp] [--sizes] [--quick]
"""
from __future__ import annotations

import argparse

import torch

from bench_table import format_table, machine_summary, settings_note
from neuroclass.config import ModelConfig
from neuroclass.device import set_threads
from neuroclass.training.throughput import (count_flops, matmul_peak_gflops, measure_inference,
                                              measure_training)
from neuroclass.models import MODELS, create
from neuroclass.training.trainer import DEFAULT_BATCH

INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
TRAIN_FLOPS_PER_FORWARD = 3  # forward + gradient w.r.t. inputs + gradient w.r.t. weights


def build(name: str, size: str) -> torch.nn.Module:
    mean, std = torch.full((1, 1, 1, 1), 0.286), torch.full((1, 1, 1, 1), 0.353)
    torch.manual_seed(0)
    return create(ModelConfig(name=name, size=size), INPUT_SHAPE, NUM_CLASSES, mean, std)


def variants(names: list[str], sizes: bool) -> list[tuple[str, str]]:
    """(family, size) pairs: each family's defaults, or with ``sizes`` each of its named sizes."""
    return [(name, size) for name in names
            for size in ([s for s, _ in MODELS.get(name).sizes] if sizes and MODELS.get(name).sizes
                         else ["default"])]


def measure_model(name: str, size: str, opts) -> dict:
    """Parameters, forward FLOPs per image, and training and inference images/s of family ``name``."""
    model = build(name, size)
    return {"name": name if size == "default" else f"{name} {size}",
            "params": sum(p.numel() for p in model.parameters()),
            "flops": count_flops(model, INPUT_SHAPE),
            "train": measure_training(model, INPUT_SHAPE, opts.batch_size, opts.steps, opts.device,
                                      warmup=opts.warmup),
            "infer": measure_inference(build(name, size), INPUT_SHAPE, opts.batch_size, opts.steps,
                                       opts.device, warmup=opts.warmup)}


def table_row(m: dict, peak: float) -> list[str]:
    train_gflops = TRAIN_FLOPS_PER_FORWARD * m["flops"] * m["train"] / 1e9
    infer_gflops = m["flops"] * m["infer"] / 1e9
    return [m["name"], f"{m['params']:,}", f"{m['flops'] / 1e6:.2f}", f"{m['train']:,.0f}",
            f"{train_gflops:.1f}", f"{100 * train_gflops / peak:.1f}%", f"{m['infer']:,.0f}",
            f"{infer_gflops:.1f}", f"{100 * infer_gflops / peak:.1f}%"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--models", default=",".join(MODELS.names()),
                        help=f"comma-separated families (default: all: {', '.join(MODELS.names())})")
    parser.add_argument("--sizes", action="store_true",
                        help="every named size of each family (model.size), not just its defaults")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                        help=f"training and inference batch (default {DEFAULT_BATCH}, the training default)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--matmul-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: batch 32, 2 timed steps, 1 warmup, 512x512 matmul")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.batch_size, opts.steps, opts.warmup = 32, 2, 1
        opts.matmul_size, opts.matmul_repeats = 512, 2
    opts.models = [m.strip() for m in opts.models.split(",") if m.strip()]
    unknown = [m for m in opts.models if m not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS.names())}")
    return opts


def main(argv=None) -> None:
    opts = parse_args(argv)
    set_threads(opts.threads)
    print(machine_summary())
    print(f"input {INPUT_SHAPE}, {NUM_CLASSES} classes | batch {opts.batch_size} | {opts.steps} timed steps "
          f"after {opts.warmup} warmup | channels_last | device {opts.device}"
          + settings_note(quick=opts.quick))
    peak = matmul_peak_gflops(opts.matmul_size, opts.matmul_repeats, opts.device)
    measured = [measure_model(name, size, opts) for name, size in variants(opts.models, opts.sizes)]
    peak = max(peak, matmul_peak_gflops(opts.matmul_size, opts.matmul_repeats, opts.device))
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s (best of {opts.matmul_repeats} "
          f"{opts.matmul_size}x{opts.matmul_size} matmuls, before and after the models)")
    print()
    headers = ["model", "params", "MFLOP/img fwd", "train img/s", "train GFLOP/s", "train % peak",
               "infer img/s", "infer GFLOP/s", "infer % peak"]
    print(format_table(headers, [table_row(m, peak) for m in measured]))
    print("\ntraining FLOPs = 3 x forward FLOPs (matmuls and convolutions only)")


if __name__ == "__main__":
    main()
