"""Model selection: what a search, an ensemble and a cross-validation are worth, and what they cost.

search  For each seed, in fresh processes, the commands a user types with the same time budget:
          default  neuroclass train DATA --time-budget B --seed S
          tune     neuroclass tune DATA --time-budget B --seed S --ensemble 5  (TPE, median pruning,
                   successive halving in as many rungs as the budget allows)
          retrain  neuroclass train DATA --time-budget B --seed S --set KEY=VALUE (the best trial's
                   values), for the seeds in --retrain-seeds, unless they are the defaults. With
                   --retrain-on all (the default) on the whole training data, the validation split
                   included (data.val_fraction=0), keeping the test-time views the best trial chose
                   on its validation split (train.tta): the "retrain the best hyperparameters on the
                   entire dataset" step of KerasTuner's guide, AutoGluon's refit_full. With
                   --retrain-on train, on the training split alone, as the trials trained
        Printed: test accuracy of the default run, of the search's best trial as found, of the
        ensemble of its top 5 trials (mean of probabilities) and of the retrained best; trials
        finished per rung and pruned; the
        search's wall time against the budget, and the share of it spent outside the trials'
        training (data loading, evaluation, Optuna, the leaderboard and reports).
cv      `neuroclass train DATA --cv 5` (mean +- std of the folds' validation accuracy) beside
        scikit-learn's cross_val_score of MLPClassifier on the same folds (read from oof.npz), on
        digits and on the Palmer penguins table (palmerpenguins package; rows with a missing value
        dropped; island and sex one-hot encoded for scikit-learn).

    python benchmarks/tune.py [--budget 10m] [--seeds 0 1 2] [--retrain-seeds 0] [--retrain-on all|train]
                              [--data fashion-mnist] [--only search|cv] [--work /tmp/neuroclass-tune] [--quick]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench_table import format_table, machine_summary, settings_note
from neuroclass.config import parse_duration
from neuroclass.tuning.refit import retrain_values

CLI = [sys.executable, "-m", "neuroclass.cli"]


def run(cmd: list[str]) -> tuple[float, str]:
    """Run ``cmd``; (wall seconds, stdout). Raises on a non-zero exit. Says what ran on stderr."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    print(f"[{wall:.0f} s] {' '.join(cmd[3:])}\n{done.stdout.strip()[-600:]}", file=sys.stderr, flush=True)
    return wall, done.stdout


def newest(folder: Path, pattern: str) -> Path:
    return max(folder.glob(pattern), key=lambda p: p.stat().st_mtime)


def retrain(data: str, budget: str, seed: int, params: dict, work: Path) -> float:
    """Test accuracy of ``train`` with the search's best values (and, to retrain on the whole
    training data, tuning.refit.retrain_values) and the whole budget."""
    out = work / f"retrain-{seed}"
    sets = [a for k, v in params.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    run([*CLI, "train", data, "--time-budget", budget, "--seed", str(seed), *sets, "--out", str(out), "--quiet"])
    return json.loads((newest(out, "*") / "metrics.json").read_text())["accuracy"]


def search_row(data: str, budget: str, seed: int, work: Path, refit: bool, whole: bool) -> list[str]:
    default_out, tune_out = work / f"default-{seed}", work / f"tune-{seed}"
    wall, _ = run([*CLI, "tune", data, "--time-budget", budget, "--seed", str(seed), "--ensemble", "5",
                   "--out", str(tune_out), "--quiet"])
    _, _ = run([*CLI, "train", data, "--time-budget", budget, "--seed", str(seed), "--out", str(default_out),
                "--quiet"])
    default_acc = json.loads((newest(default_out, "*") / "metrics.json").read_text())["accuracy"]
    study = newest(tune_out, "tune-*")
    board = json.loads((study / "leaderboard.json").read_text())["rows"]
    best = next(r for r in board if r["state"] == "complete")
    trained = sum(json.loads((study / r["run"] / "timing.json").read_text())["train_seconds"]
                  for r in board if r["state"] == "complete")
    trained += sum(r["seconds"] or 0.0 for r in board if r["state"] == "pruned")  # pruned: all training
    ensemble = newest(study, "ensemble*")
    ens_acc = json.loads((ensemble / "metrics.json").read_text())["accuracy"]
    outside = (wall - trained) / wall
    defaults = next(r for r in board if r["trial"] == 0)["params"]  # a new study's first trial
    refit_acc = "-"
    if refit:
        values = retrain_values(study / best["run"], best["params"]) if whole else best["params"]
        refit_acc = ("= defaults" if best["params"] == defaults and not whole else
                     f"{retrain(data, budget, seed, values, work):.4f}")
    rungs = "+".join(str(sum(r["rung"] == k and r["state"] in ("complete", "pruned") for r in board))
                     for k in range(max(r["rung"] for r in board) + 1))
    return [str(seed), f"{default_acc:.4f}", f"{best['test']['accuracy']:.4f} (rung {best['rung']})", f"{ens_acc:.4f}",
            refit_acc, f"{rungs} ({sum(r['state'] == 'pruned' for r in board)} pruned)",
            f"{wall:.0f} s / {parse_duration(budget):.0f} s", f"{100 * outside:.1f}%"]


def penguins_csv(work: Path) -> Path:
    from palmerpenguins import load_penguins

    path = work / "penguins.csv"
    load_penguins().dropna().to_csv(path, index=False)
    return path


def sklearn_same_folds(summary: Path, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """cross_val_score of a standardised MLPClassifier on the folds the summary's oof.npz records."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    oof = np.load(summary / "oof.npz")
    pool, fold = oof["index"], oof["fold"]
    splits = [(pool[fold != f], pool[fold == f]) for f in np.unique(fold)]
    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(100,), max_iter=500, random_state=0))
    return cross_val_score(model, features, labels, cv=splits, scoring="accuracy")


def cv_rows(work: Path, epochs: int) -> list[list[str]]:
    import pandas as pd
    from sklearn.datasets import load_digits

    rows = []
    digits = load_digits()
    penguins = penguins_csv(work)
    frame = pd.read_csv(penguins)
    table_x = pd.get_dummies(frame.drop(columns=["species"]), columns=["island", "sex"]).to_numpy(float)
    table_y = frame["species"].astype("category").cat.codes.to_numpy()
    for name, data, extra, x, y in (("digits", "digits", ["--model", "mlp"], digits.data, digits.target),
                                    ("penguins", str(penguins), ["--label-column", "species", "--set", "data.categorical=[island,sex]"], table_x, table_y)):
        out = work / f"cv-{name}"
        wall, _ = run([*CLI, "train", data, *extra, "--cv", "5", "--epochs", str(epochs), "--out", str(out), "--quiet"])
        summary = newest(out, "*cv5*")
        acc = json.loads((summary / "cv.json").read_text())["metrics"]["accuracy"]
        scores = sklearn_same_folds(summary, x, y)
        rows.append([name, f"{acc['mean']:.4f} +- {acc['std']:.4f}", f"{scores.mean():.4f} +- {scores.std():.4f}",
                     f"{wall:.0f} s"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="10m")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--retrain-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--retrain-on", choices=["all", "train"], default="all",
                        help="all: the training and validation data (the best trial's views); train: the training split")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--only", choices=["search", "cv"])
    parser.add_argument("--work", default="/tmp/neuroclass-tune")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the script, not a result")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    budget = "1m" if args.quick else args.budget
    print(machine_summary() + settings_note(quick=args.quick))
    if args.only in (None, "cv"):
        print("\ncross-validation, 5 stratified folds: neuroclass train --cv 5 beside scikit-learn's "
              "cross_val_score(MLPClassifier) on the same folds (validation accuracy, mean +- std over folds)")
        print(format_table(["data", "neuroclass --cv 5", "sklearn MLPClassifier", "neuroclass wall"],
                           cv_rows(work, 5 if args.quick else 30)))
    if args.only in (None, "search"):
        print(f"\nsearch on {args.data}, --time-budget {budget} each (test accuracy)")
        rows = []
        for seed in args.seeds:
            rows.append(search_row(args.data, budget, seed, work, seed in args.retrain_seeds, args.retrain_on == "all"))
            retrained = "best retrained" + (" (train+val)" if args.retrain_on == "all" else "")
            print(format_table(["seed", "train (default)", "tune best", "ensemble top 5", retrained, "trials per rung",
                                "tune wall / budget", "outside training"], rows), flush=True)


if __name__ == "__main__":
    main()
