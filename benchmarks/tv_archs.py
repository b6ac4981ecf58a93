"""Training speed of torchvision's small pretrained architectures on colour images: which one to suggest.

For each architecture (the tv family, 3 classes, channels_last): parameters, ImageNet top-1 and
weights-file size from torchvision's weights metadata (nothing is downloaded), and training and
inference images/s on random 3xSxS images for each side S. The pretrained-weights advice
(training/pretrained_advice.py) suggests the fastest on a CPU.

    python benchmarks/tv_archs.py [--archs resnet18,mobilenet_v3_small,efficientnet_b0]
                                  [--sides 128,224] [--batch-size 16] [--steps 5] [--quick]
"""
from __future__ import annotations

import argparse

import torch

from bench_table import format_table, machine_summary, settings_note
from neuroclass.config import ModelConfig
from neuroclass.device import set_threads
from neuroclass.models import create
from neuroclass.training.throughput import measure_inference, measure_training

CLASSES = 3


def weights_meta(arch: str) -> tuple[str, str]:
    """(ImageNet top-1, weights file MB) of torchvision's default weights, as its metadata says."""
    from torchvision.models import get_model_weights

    meta = get_model_weights(arch).DEFAULT.meta
    return f"{meta['_metrics']['ImageNet-1K']['acc@1']:.1f}%", f"{meta['_file_size']:.0f}"


def build(arch: str, shape: tuple[int, int, int]) -> torch.nn.Module:
    """A tv Classifier as training builds it (input standardization included), randomly initialised."""
    mean, std = torch.full((1, 3, 1, 1), 0.45), torch.full((1, 3, 1, 1), 0.25)
    torch.manual_seed(0)
    return create(ModelConfig(name="tv", options={"arch": arch}), shape, CLASSES, mean, std)


def rows(opts) -> list[list[str]]:
    out = []
    for arch in opts.archs:
        top1, size = weights_meta(arch)
        for side in opts.sides:
            shape = (3, side, side)
            net = build(arch, shape)
            params = sum(p.numel() for p in net.parameters())
            train = measure_training(net, shape, opts.batch_size, opts.steps, warmup=opts.warmup)
            infer = measure_inference(build(arch, shape), shape, opts.batch_size, opts.steps,
                                      warmup=opts.warmup)
            out.append([arch, f"{params:,}", top1, size, str(side), f"{train:,.0f}", f"{infer:,.0f}"])
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--archs", default="resnet18,mobilenet_v3_small,efficientnet_b0")
    parser.add_argument("--sides", default="128,224", help="image sides to time (default 128,224)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="smoke test: side 64, batch 4, 1 timed step")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.sides, opts.batch_size, opts.steps, opts.warmup = "64", 4, 1, 1
    opts.archs = [a.strip() for a in opts.archs.split(",") if a.strip()]
    opts.sides = [int(s) for s in str(opts.sides).split(",") if s.strip()]
    return opts


def main(argv=None) -> None:
    opts = parse_args(argv)
    set_threads(opts.threads)
    print(machine_summary())
    print(f"{CLASSES} classes | batch {opts.batch_size} | {opts.steps} timed steps after {opts.warmup} "
          "warmup | channels_last | cpu" + settings_note(quick=opts.quick))
    print()
    headers = ["arch", "params", "ImageNet top-1", "weights MB", "side", "train img/s", "infer img/s"]
    print(format_table(headers, rows(opts)))


if __name__ == "__main__":
    main()
