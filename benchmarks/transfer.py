"""Transfer learning: a model pretrained on one task, fine-tuned on a few labels of another, against
the same model trained from scratch on the same labels within the same time budget.

1. Pretrain with `neuroclass.train(SOURCE, time_budget=PRETRAIN)` (the default cnn unless --set says
   otherwise; the budget picks its size), where SOURCE depends on --target:
   - `fashion-split` (default): the source is Fashion-MNIST's training images of its first five
     classes (T-shirt/top, Trouser, Pullover, Dress, Coat); the target is the other five classes
     (Sandal, Shirt, Sneaker, Bag, Ankle boot), drawn from the official test images, which the
     pretraining never saw: the same kind of pictures, classes the network has never been told.
   - `digits`: the source is all of Fashion-MNIST; the target is scikit-learn's 1797 8x8 `digits`,
     upscaled to 20x20 and centred in 28x28 (the framing of MNIST): another domain.
2. The target is written to a temporary .npz. Per seed, a stratified `--labelled` examples are the
   training set (data.val_fraction=0) and every other image of the target is the test set.
3. Per seed, three runs of `--budget` each on those few labels: fine-tuned (`model.from_run`: head-only
   epoch, then discriminative rates), feature extractor (`--freeze`: only the new head trains), and
   from scratch (same model, same config, random start). The pretraining time is not counted: the
   question is what a pretrained start buys when labels are few.

    python benchmarks/transfer.py [--target fashion-split|digits] [--pretrain 3m] [--budget 30s]
                                  [--labelled 50] [--seeds 0,1,2] [--set section.key=value ...] [--quick]
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
from neuroclass.runs import RunFolder

QUICK = {"pretrain": "15s", "budget": "5s", "seeds": "0", "pretrain_overrides": ["data.limit=2000"]}
# from scratch builds the pretrained network's size (a time budget alone would pick its own)
CONTENDERS = {"fine-tuned": ["model.from_run={run}"],
              "feature extractor": ["model.from_run={run}", "train.freeze=true"],
              "from scratch": ["model.size={size}"]}
SOURCE_CLASSES = [0, 1, 2, 3, 4]  # fashion-split: pretrain on these, transfer to the rest


def fashion_split(folder: Path) -> tuple[Path, Path]:
    """Fashion-MNIST cut by class: the training images of SOURCE_CLASSES (the source) and the
    official test images of the other classes (the target), each as an .npz with class names."""
    from neuroclass.data.builtin import load_builtin

    ds = load_builtin("fashion-mnist")
    test = torch.zeros(len(ds.y), dtype=torch.bool)
    test[torch.from_numpy(ds.parts["test"])] = True
    source = torch.isin(ds.y, torch.tensor(SOURCE_CLASSES))
    paths = []
    for name, keep in (("source", source & ~test), ("target", ~source & test)):
        labels = sorted(set(ds.y[keep].tolist()))
        y = torch.searchsorted(torch.tensor(labels), ds.y[keep])
        path = folder / f"fashion-{name}.npz"
        np.savez(path, x=ds.x[keep][:, 0].numpy(), y=y.numpy(), classes=np.array([ds.classes[c] for c in labels]))
        paths.append(path)
    return paths[0], paths[1]


def digits_28(path: Path) -> Path:
    """scikit-learn's digits as 28x28 uint8 images: 8x8 upscaled (bilinear) to 20x20, 4-pixel border."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255.0 / 16.0)  # (N, 1, 8, 8) in 0..255
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)  # (N, 1, 20, 20)
    x = F.pad(x, (4, 4, 4, 4)).clamp(0, 255).round().to(torch.uint8)  # (N, 1, 28, 28)
    np.savez(path, x=x[:, 0].numpy(), y=bunch.target.astype(np.int64))
    return path


def run_contender(name: str, data: Path, n_images: int, pretrained, seed: int, opts, out: str) -> dict:
    """One run on the few labels: test accuracy, epochs, training seconds (or the error)."""
    size = RunFolder.open(pretrained.path).config().model.size
    overrides = [o.format(run=pretrained.path, size=size) for o in CONTENDERS[name]] + opts.overrides + [
        "data.val_fraction=0", f"data.test_fraction={1 - opts.labelled / n_images:.6f}"]
    try:
        result = train(str(data), time_budget=opts.budget, seed=seed, quiet=True, out=out, report=False,
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


TARGETS = ("fashion-split", "digits")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--target", default="fashion-split", choices=TARGETS,
                        help="the few-label task: fashion-split (default) or digits (see above)")
    parser.add_argument("--pretrain", default="3m", help="pretraining budget (default 3m)")
    parser.add_argument("--budget", default="30s", help="budget of each run on the target (default 30s)")
    parser.add_argument("--labelled", type=int, default=50,
                        help="labelled target images to train on, stratified (default 50)")
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
        parser.error(f"--labelled must be in 10..1000 (the smallest target has 1797 images). Got {opts.labelled}.")
    opts.seeds = [int(s) for s in opts.seeds.split(",") if s.strip()]
    try:
        parse_duration(opts.pretrain), parse_duration(opts.budget)
        opts.config = load_config(overrides=opts.overrides)
    except NeuroclassError as exc:
        parser.error(str(exc))
    return opts


def prepare(target: str, folder: Path) -> tuple[str, Path, str]:
    """(pretraining source, target .npz, the target's description) for --target."""
    if target == "digits":
        return "fashion-mnist", digits_28(folder / "digits28.npz"), "digits 28x28"
    source, target_npz = fashion_split(folder)
    return str(source), target_npz, "Fashion-MNIST classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot)"


def main(argv=None) -> None:
    opts = parse_args(argv)
    cfg = opts.config
    print(machine_summary())
    print(f"target {opts.target} | model {cfg.model.name} | optim {cfg.optim.name} lr {cfg.optim.lr:g} | "
          f"layer_decay {cfg.optim.layer_decay:g} | pretrain {opts.pretrain} | {opts.budget} per run | "
          f"seeds {','.join(map(str, opts.seeds))}" + settings_note(opts.overrides, opts.quick))
    with tempfile.TemporaryDirectory(prefix="nc-transfer-") as out:
        source, data, described = prepare(opts.target, Path(out))
        n_images = len(np.load(data)["y"])
        print(f"pretraining on {Path(source).stem} for {opts.pretrain} ...", flush=True)
        pre = train(source, time_budget=opts.pretrain, quiet=True, out=out, report=False,
                    overrides=opts.overrides + opts.pretrain_overrides)
        size = RunFolder.open(pre.path).config().model.size
        print(f"pretrained: test accuracy {fmt_percent(pre.metrics['accuracy'])} on its own classes, "
              f"{pre.timing['epochs']} epochs, {fmt_seconds(pre.timing['train_seconds'])} training, "
              f"model size {size}")
        results: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
        for seed in opts.seeds:
            for name in CONTENDERS:
                print(f"seed {seed}: {name} ...", flush=True)
                results[name].append(run_contender(name, data, n_images, pre, seed, opts, out))
    print()
    print(f"{described}: {opts.labelled} labelled for training, the other {n_images - opts.labelled} "
          "for testing; same budget and model for every row")
    headers = ["start", "labelled", "test acc (mean)", "per seed", "epochs", "train time", "note"]
    print(format_table(headers, [summary_row(n, r, opts.labelled) for n, r in results.items()]))
    scratch, tuned = (results[n] for n in ("from scratch", "fine-tuned"))
    if all("accuracy" in r for r in scratch + tuned):
        gain = statistics.mean(r["accuracy"] for r in tuned) - statistics.mean(r["accuracy"] for r in scratch)
        print(f"fine-tuning minus from scratch: {100 * gain:+.2f} points")


if __name__ == "__main__":
    main()
