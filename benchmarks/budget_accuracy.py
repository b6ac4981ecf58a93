"""Best Fashion-MNIST test accuracy neuroclass reaches within a time budget (default 1, 3 and 10 minutes).

Each budget is one `neuroclass.train("fashion-mnist", time_budget=...)` run with the default config
(or the --set overrides given), run one after another on this machine; the test accuracy is on the
official 10k test split. The budget bounds the whole run, data loading and test evaluation included.
The table shows the model size the budget picked (model.size=auto), the augmentation it added
(augment.auto: flips, shifts) and the test-time augmentation chosen on the validation split (tta).
With several --seeds each budget runs once per seed and a "mean" row follows its runs.

    python benchmarks/budget_accuracy.py [--budgets 1m,3m,10m] [--seeds 0,1,2] [--set section.key=value ...] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile

from bench_table import fmt_percent, fmt_seconds, format_table, machine_summary, settings_note
from neuroclass.api import train
from neuroclass.config import load_config, parse_duration
from neuroclass.errors import NeuroclassError
from neuroclass.runs import RunFolder

QUICK_BUDGETS = "10s,20s"
QUICK_OVERRIDES = ["data.limit=3000"]


def run_budget(budget: str, seed: int, overrides: list[str], out: str) -> tuple[list[str], float | None]:
    """One table row (the run's test accuracy, what the budget chose, where its time went) and the
    test accuracy (None when the run failed)."""
    try:
        result = train("fashion-mnist", time_budget=budget, quiet=True, out=out, report=False,
                       overrides=overrides + [f"train.seed={seed}"])
    except NeuroclassError as exc:
        return [budget, str(seed), "-", "-", "-", "-", "-", "-", "-", "-", f"FAILED: {exc}"], None
    t = result.timing
    size = (t.get("model_size") or {}).get("size", "-")
    auto = t.get("auto_augment") or {}
    added = (["flips"] if auto.get("flip") else []) + ([f"shift{auto['shift']}"] if auto.get("shift") else [])
    tta = RunFolder.open(result.path).meta()["inference"]["tta"]
    accuracy = result.metrics["accuracy"]
    return [budget, str(seed), fmt_percent(accuracy), size, "+".join(added) or "-", tta, str(t["epochs"]),
            fmt_seconds(t["train_seconds"]), fmt_seconds(t["total_seconds"]),
            f"{t['train_examples_per_second']:,.0f}", t.get("stop_reason") or "-"], accuracy


def mean_row(budget: str, accuracies: list[float]) -> list[str]:
    low, high = fmt_percent(min(accuracies)), fmt_percent(max(accuracies))
    return [budget, "mean", fmt_percent(statistics.mean(accuracies)), "", "", "", "", "", "", "",
            f"{len(accuracies)} runs, {low} to {high}"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--budgets", default="1m,3m,10m",
                        help="comma-separated time budgets, e.g. 90s,5m (default 1m,3m,10m)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one run per seed and budget (default 0)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override passed to neuroclass.train (repeatable)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: budgets {QUICK_BUDGETS} on {' '.join(QUICK_OVERRIDES)}")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.budgets = QUICK_BUDGETS
        opts.overrides = QUICK_OVERRIDES + opts.overrides
    opts.budgets = [b.strip() for b in opts.budgets.split(",") if b.strip()]
    try:
        opts.seeds = [int(seed) for seed in opts.seeds.split(",") if seed.strip()]
    except ValueError:
        parser.error(f"--seeds: whole numbers separated by commas, e.g. 0,1,2. Got {opts.seeds!r} instead.")
    try:
        for budget in opts.budgets:
            parse_duration(budget)
        opts.config = load_config(overrides=["data.source=fashion-mnist"] + opts.overrides)
    except NeuroclassError as exc:
        parser.error(str(exc))
    return opts


def main(argv=None) -> None:
    opts = parse_args(argv)
    cfg = opts.config
    print(machine_summary())
    print(f"data: fashion-mnist (official test split) | model {cfg.model.name} | optim {cfg.optim.name} "
          f"{cfg.optim.schedule} lr {cfg.optim.lr:g} | seeds {','.join(map(str, opts.seeds))} "
          f"| threads {cfg.train.threads or 'default'}"
          + settings_note(opts.overrides, opts.quick))
    rows = []
    with tempfile.TemporaryDirectory(prefix="nc-budget-") as out:
        for budget in opts.budgets:
            accuracies = []
            for seed in opts.seeds:
                print(f"running budget {budget}, seed {seed} ...", flush=True)
                row, accuracy = run_budget(budget, seed, opts.overrides, out)
                rows.append(row)
                accuracies += [accuracy] if accuracy is not None else []
            if len(opts.seeds) > 1 and accuracies:
                rows.append(mean_row(budget, accuracies))
    print()
    headers = ["budget", "seed", "test acc", "size", "auto aug", "tta", "epochs", "train time", "total time",
               "train img/s", "stopped by"]
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
