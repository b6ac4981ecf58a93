"""Transfer learning: a model pretrained on Fashion-MNIST, fine-tuned on a few labelled digits, against
the same model trained from scratch on the same digits within the same time budget.

1. Pretrain: `neuroclass.train("fashion-mnist", time_budget=PRETRAIN)` (the default cnn unless --set
   says otherwise).
2. The target task: scikit-learn's 1797 8x8 `digits`, upscaled to 20x20 and centred in 28x28 (the
   framing of MNIST), written to a temporary .npz. Per seed, a stratified `--labelled` examples are
   the training set (data.val_fraction=0) and every other image is the test set.
3. Per seed, three runs of `--budget` each on those few labels: fine-tuned (`model.from_run`: head-only
   epoch, then discriminative rates), feature extractor (`--freeze`: only the new head trains), and
   from scratch (same model, same config, random start). The pretraining time is not counted: the
   question is what a pretrained start buys when labels are few.

    python benchmarks/transfer.py [--pretrain 3m] [--budget 30s] [--labelled 100] [--seeds 0,1,2]
                                  [--set section.key=value ...] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench_table import fmt_percent, fmt_seconds, format_table, machine_summary, settings_note
from neuroclass.api import train
from neuroclass.config import load_config, parse_duration
from neuroclass.errors import NeuroclassError

QUICK = {"pretrain": "15s", "budget": "5s", "seeds": "0", "pretrain_overrides": ["data.limit=2000"]}
CONTENDERS = {"fine-tuned": ["model.from_run={run}"],
              "feature extractor": ["model.from_run={run}", "train.freeze=true"],
              "from scratch": []}


def digits_28(path: Path) -> Path:
    """scikit-learn's digits as 28x28 uint8 images: 8x8 upscaled (bilinear) to 20x20, 4-pixel border."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255.0 / 16.0)  # (N, 1, 8, 8) in 0..255
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)  # (N, 1, 20, 20)
    x = F.pad(x, (4, 4, 4, 4)).clamp(0, 255).round().to(torch.uint8)  # (N, 1, 28, 28)
    np.savez(path, x=x[:, 0].numpy(), y=bunch.target.astype(np.int64))
    return path


def run_contender(name: str, data: Path, pretrained: Path, seed: int, opts, out: str) -> dict:
    """One run on the few labels: test accuracy, epochs, training seconds (or the error)."""
    n_images = 1797
    overrides = [o.format(run=pretrained) for o in CONTENDERS[name]] + opts.overrides + [
        "data.val_fraction=0", f"data.test_fraction={1 - opts.labelled / n_images:.6f}"]
    try:
        result = train(str(data), time_budget=opts.budget, seed=seed, quiet=True, out=out,
                       overrides=overrides)
    except NeuroclassError as exc:
        return {"error": str(exc)}
    return {"accuracy": result.metrics["accuracy"], "epochs": result.timing["epochs"],
            "train_seconds": result.timing["train_seconds"]}


def summary_row(name: str, results: list[dict], labelled: int) -> list[str]:
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return [name, str(labelled), "-", "-", "-", "-", f"FAILED: {errors[0]}"]
    accs = [r["accuracy"] for r in results]
    spread = f" +- {100 * statistics.stdev(accs):.2f}" if len(accs) > 1 else ""
    return [name, str(labelled), fmt_percent(statistics.mean(accs)) + spread,
            " ".join(fmt_percent(a) for a in accs),
            f"{statistics.mean(r['epochs'] for r in results):.0f}",
            fmt_seconds(statistics.mean(r["train_seconds"] for r in results)), ""]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--pretrain", default="3m", help="Fashion-MNIST pretraining budget (default 3m)")
    parser.add_argument("--budget", default="30s", help="budget of each run on the digits (default 30s)")
    parser.add_argument("--labelled", type=int, default=100,
                        help="labelled digits to train on, stratified (default 100 of 1797)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds: splits and inits")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for every run, e.g. model.name=resnet (repeatable)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: pretrain 15s on 2000 images, 5s runs, one seed")
    opts = parser.parse_args(argv)
    opts.pretrain_overrides = []
    if opts.quick:
        opts.pretrain, opts.budget, opts.seeds = QUICK["pretrain"], QUICK["budget"], QUICK["seeds"]
        opts.pretrain_overrides = QUICK["pretrain_overrides"]
    if not 10 <= opts.labelled <= 1000:
        parser.error(f"--labelled must be in 10..1000 (the digits have 1797 images). Got {opts.labelled}.")
    opts.seeds = [int(s) for s in opts.seeds.split(",") if s.strip()]
    try:
        parse_duration(opts.pretrain), parse_duration(opts.budget)
        opts.config = load_config(overrides=opts.overrides)
    except NeuroclassError as exc:
        parser.error(str(exc))
    return opts


def main(argv=None) -> None:
    opts = parse_args(argv)
    cfg = opts.config
    print(machine_summary())
    print(f"model {cfg.model.name} | optim {cfg.optim.name} lr {cfg.optim.lr:g} | layer_decay "
          f"{cfg.optim.layer_decay:g} | pretrain {opts.pretrain} | {opts.budget} per run | seeds "
          f"{','.join(map(str, opts.seeds))}"
          + settings_note(opts.overrides, opts.quick))
    with tempfile.TemporaryDirectory(prefix="nc-transfer-") as out:
        print(f"pretraining on fashion-mnist for {opts.pretrain} ...", flush=True)
        pre = train("fashion-mnist", time_budget=opts.pretrain, quiet=True, out=out,
                    overrides=opts.overrides + opts.pretrain_overrides)
        print(f"pretrained: fashion-mnist test accuracy {fmt_percent(pre.metrics['accuracy'])}, "
              f"{pre.timing['epochs']} epochs, {fmt_seconds(pre.timing['train_seconds'])} training")
        data = digits_28(Path(out) / "digits28.npz")
        results: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
        for seed in opts.seeds:
            for name in CONTENDERS:
                print(f"seed {seed}: {name} ...", flush=True)
                results[name].append(run_contender(name, data, pre.path, seed, opts, out))
    print()
    print(f"digits 28x28: {opts.labelled} labelled for training, the other {1797 - opts.labelled} for "
          "testing; same budget and model for every row")
    headers = ["start", "labelled", "test acc (mean)", "per seed", "epochs", "train time", "note"]
    print(format_table(headers, [summary_row(n, r, opts.labelled) for n, r in results.items()]))


if __name__ == "__main__":
    main()
