"""Best Fashion-MNIST test accuracy neuroclass reaches within a time budget (default 1, 3 and 10 minutes).

Each budget is one `neuroclass.train("fashion-mnist", time_budget=...)` run with the default config
(or the --set overrides given), run one after another on this machine; the test accuracy is on the
official 10k test split. The budget bounds the whole run, data loading and test evaluation included.
The table shows the model size the budget picked (model.size=auto) and the augmentation it added
(augment.auto: flips, shifts).

    python benchmarks/budget_accuracy.py [--budgets 1m,3m,10m] [--set section.key=value ...] [--quick]
"""
from __future__ import annotations

import argparse
import tempfile

from bench_table import fmt_percent, fmt_seconds, format_table, machine_summary, settings_note
from neuroclass.api import train
from neuroclass.config import load_config, parse_duration
from neuroclass.errors import NeuroclassError

QUICK_BUDGETS = "10s,20s"
QUICK_OVERRIDES = ["data.limit=3000"]


def run_budget(budget: str, overrides: list[str], out: str) -> list[str]:
    """One table row: the run's test accuracy, epochs, and where its time went."""
    try:
        result = train("fashion-mnist", time_budget=budget, quiet=True, out=out, overrides=overrides)
    except NeuroclassError as exc:
        return [budget, "-", "-", "-", "-", "-", "-", "-", f"FAILED: {exc}"]
    t = result.timing
    size = (t.get("model_size") or {}).get("size", "-")
    auto = t.get("auto_augment") or {}
    added = (["flips"] if auto.get("flip") else []) + ([f"shift{auto['shift']}"] if auto.get("shift") else [])
    return [budget, fmt_percent(result.metrics["accuracy"]), size, "+".join(added) or "-", str(t["epochs"]),
            fmt_seconds(t["train_seconds"]), fmt_seconds(t["total_seconds"]),
            f"{t['train_images_per_second']:,.0f}", t.get("stop_reason") or "-"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--budgets", default="1m,3m,10m",
                        help="comma-separated time budgets, e.g. 90s,5m (default 1m,3m,10m)")
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
          f"{cfg.optim.schedule} lr {cfg.optim.lr:g} | seed {cfg.train.seed} | threads {cfg.train.threads or 'default'}"
          + settings_note(opts.overrides, opts.quick))
    rows = []
    with tempfile.TemporaryDirectory(prefix="nc-budget-") as out:
        for budget in opts.budgets:
            print(f"running budget {budget} ...", flush=True)
            rows.append(run_budget(budget, opts.overrides, out))
    print()
    headers = ["budget", "test acc", "size", "auto aug", "epochs", "train time", "total time", "train img/s",
               "stopped by"]
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
