"""Classical families against the networks: what `neuroclass compare` finds on small tables and on
Fashion-MNIST.

tables  One `neuroclass compare DATA --models mlp,logreg,svm,knn,random_forest,hist_gb,xgboost,lightgbm
        --cv 5 --time-budget B` per data set (the same folds for every family, B shared by the
        families): scikit-learn's breast cancer (569 rows, 30 features, 2 classes), wine (178, 13, 3)
        and digits as a table (1,797 rows of 64 pixel values, 10 classes), each written to a CSV
        file first so that it goes through the table path, and the Palmer penguins table
        (palmerpenguins package; 344 rows, missing values kept: the table path imputes them, and reads
        island and sex as categories). Printed: each family's 5-fold validation accuracy (mean +- std over
        the folds), and whether the mlp is within 1 point of the best boosting model (hist_gb,
        xgboost, lightgbm).
images  Fashion-MNIST (60k training / 10k test images): the cnn against HOG and HOG+LBP features
        with an rbf and a linear SVM and with LightGBM, each entry alone with the same time budget
        (one `neuroclass compare fashion-mnist --models ENTRY --time-budget B` per entry, the same
        seed and so the same split; `--shared` runs them in one compare with N x B shared instead;
        `--entries` picks some).
        Each entry gets a fresh feature cache, so that its fit seconds include computing its
        features. Printed: test accuracy, fit seconds (features included), the budget it was given,
        prediction seconds per 1,000 images, model size.

    python benchmarks/classical.py [--only tables|images] [--table-budget 8m] [--image-budget 10m]
                                   [--shared] [--entries cnn,svm+hog] [--work /tmp/neuroclass-classical] [--quick]

--quick: 2 folds, 300 rows, one epoch for the mlp and no budget on the tables; 600 Fashion-MNIST
images and 15 s an entry: checks the script in a few minutes; its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_table import fmt_seconds, format_table, machine_summary, settings_note

CLI = [sys.executable, "-m", "neuroclass.cli"]
FAMILIES = ("mlp", "logreg", "svm", "knn", "random_forest", "hist_gb", "xgboost", "lightgbm")
BOOSTING = ("hist_gb", "xgboost", "lightgbm")
IMAGE_ENTRIES = ("cnn", "svm+hog", "svm[kernel=linear]+hog", "svm[kernel=linear]+hog+lbp", "lightgbm+hog",
                 "lightgbm+hog+lbp")
WITHIN = 0.01  # "within 1 point": of accuracy, as a fraction


def run(cmd: list[str], env: dict | None = None) -> tuple[float, str, str | None]:
    """Run ``cmd``; (wall seconds, stdout, the error's last line or None). Says what ran on stderr."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    print(f"[{wall:.0f} s] {' '.join(cmd[3:])}\n{done.stdout.strip()[-800:]}", file=sys.stderr, flush=True)
    error = None
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        print(f"  failed: {error}", file=sys.stderr, flush=True)
    return wall, done.stdout, error


def newest(folder: Path, pattern: str) -> Path | None:
    found = list(folder.glob(pattern))
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def leaderboard(out: Path) -> dict[str, dict]:
    """The newest comparison's rows in ``out``, by entry ({} when none was written)."""
    folder = newest(out, "compare-*")
    if folder is None or not (folder / "leaderboard.json").is_file():
        return {}
    return {row["entry"]: row for row in json.loads((folder / "leaderboard.json").read_text())["rows"]}


def table_files(work: Path) -> list[tuple[str, Path, list[str]]]:
    """(name, CSV, extra compare arguments) for each table: scikit-learn's three written as CSV
    files with a "label" column, and the penguins as the package gives them (missing values kept)."""
    import pandas as pd
    from palmerpenguins import load_penguins
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    tables = []
    for name, loader in (("breast_cancer", load_breast_cancer), ("wine", load_wine), ("digits", load_digits)):
        bunch = loader()
        columns = [str(c).replace(" ", "_") for c in getattr(bunch, "feature_names", range(bunch.data.shape[1]))]
        frame = pd.DataFrame(bunch.data, columns=[f"x_{c}" for c in columns])
        frame["label"] = [str(bunch.target_names[t]) if hasattr(bunch, "target_names") else str(t)
                          for t in bunch.target]
        path = work / f"{name}.csv"
        frame.to_csv(path, index=False)
        tables.append((name, path, ["--label-column", "label"]))
    penguins = work / "penguins.csv"
    load_penguins().to_csv(penguins, index=False)
    tables.append(("penguins", penguins, ["--label-column", "species"]))  # island and sex: categories by the schema
    return tables


def table_rows(work: Path, budget: str | None, folds: int, quick: bool) -> list[list[str]]:
    rows = []
    for name, path, extra in table_files(work):
        out = work / f"tables-{name}"
        cmd = [*CLI, "compare", str(path), *extra, "--models", ",".join(FAMILIES), "--cv", str(folds),
               "--out", str(out), "--no-report", "--quiet"]
        cmd += ["--time-budget", budget] if budget else []
        cmd += ["--set", "train.epochs=1", "--set", "data.limit=300"] if quick else []
        wall, _, error = run(cmd)
        board = leaderboard(out)
        cells = [_cv_cell(board.get(family)) for family in FAMILIES]
        rows.append([name, *cells, _mlp_within(board) if board else f"failed: {error}", f"{wall:.0f} s"])
    return rows


def _cv_cell(row: dict | None) -> str:
    if row is None:
        return "-"
    if row["error"] or row["val"] is None:
        return "failed"
    return f"{row['val']:.4f} +- {row['val_std'] or 0.0:.4f}"


def _mlp_within(board: dict[str, dict]) -> str:
    """"yes" when the mlp's mean fold accuracy is within WITHIN of the best boosting family's."""
    scores = {name: row["val"] for name, row in board.items() if not row["error"] and row["val"] is not None}
    boosting = [scores[name] for name in BOOSTING if name in scores]
    if "mlp" not in scores or not boosting:
        return "-"
    gap = max(boosting) - scores["mlp"]
    if gap <= 0:
        return f"yes ({-100 * gap:.1f} pt ahead)"
    return f"{'yes' if gap <= WITHIN else 'no'} ({100 * gap:.1f} pt behind)"


def image_rows(work: Path, budget: str, shared: bool, quick: bool, entries: tuple[str, ...]) -> list[list[str]]:
    """One compare per entry with ``budget`` each (or, ``shared``, one compare of all of them with
    N x ``budget`` shared); each with a fresh feature cache."""
    common = ["--no-report", "--quiet"] + (["--set", "data.limit=600"] if quick else [])
    groups = [entries] if shared else [(entry,) for entry in entries]
    rows = []
    for i, group in enumerate(groups):
        out, cache = work / f"images-{i}", work / f"feature-cache-{i}"
        total = f"{len(group) * _seconds(budget):.0f}s"
        env = {**os.environ, "NEUROCLASS_CACHE": str(cache)}
        _, _, error = run([*CLI, "compare", "fashion-mnist", "--models", ",".join(group), "--time-budget", total,
                           "--out", str(out), *common], env=env)
        board = leaderboard(out)
        for entry in group:
            row = board.get(entry)
            if row is None or row["error"]:
                rows.append([entry, f"failed: {row['error'] if row else error}", "-", "-", "-", "-"])
                continue
            rows.append([entry, f"{row['test_accuracy']:.4f}", fmt_seconds(row["train_seconds"]),
                         fmt_seconds(row["time_budget"]), f"{row['predict_seconds_per_1000']:.3f} s",
                         f"{row['model_bytes'] / 1e6:.1f} MB"])
    return rows


def _seconds(text: str) -> float:
    from neuroclass.config import parse_duration

    return parse_duration(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["tables", "images"])
    parser.add_argument("--table-budget", default="8m", help="each table's compare, shared by its 8 families")
    parser.add_argument("--image-budget", default="10m", help="each Fashion-MNIST entry's")
    parser.add_argument("--shared", action="store_true", help="the image entries in one compare, sharing N x the budget")
    parser.add_argument("--entries", default=",".join(IMAGE_ENTRIES),
                        help="the Fashion-MNIST entries, comma-separated (default: %(default)s)")
    parser.add_argument("--work", default="/tmp/neuroclass-classical")
    parser.add_argument("--quick", action="store_true",
                        help="tiny budgets and subsets: checks the script, not a result")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    folds = 2 if args.quick else 5
    print(machine_summary() + settings_note(quick=args.quick))
    if args.only in (None, "tables"):
        budget = None if args.quick else args.table_budget
        print(f"\ntables: neuroclass compare --cv {folds}" + (f" --time-budget {budget} per table" if budget else "")
              + f" (validation accuracy over the {folds} folds, mean +- std)")
        print(format_table(["data", *FAMILIES, "mlp within 1 pt of the best boosting", "wall"],
                           table_rows(work, budget, folds, args.quick)), flush=True)
    if args.only in (None, "images"):
        budget = "15s" if args.quick else args.image_budget
        entries = tuple(e.strip() for e in args.entries.split(",") if e.strip())
        how = f"{len(entries)} entries sharing {len(entries) * _seconds(budget):.0f} s" if args.shared else f"{budget} each"
        print(f"\nFashion-MNIST: the cnn against HOG / HOG+LBP features, {how} (test accuracy)")
        print(format_table(["entry", "test accuracy", "fit (features included)", "budget given",
                            "predict / 1000", "model size"], image_rows(work, budget, args.shared, args.quick, entries)))


if __name__ == "__main__":
    main()
