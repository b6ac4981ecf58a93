"""The end of a search: the leaderboard, ``best``, the best run's report and the study's report.

``leaderboard.csv`` / ``leaderboard.json``: one row per trial (best first): trial, state, the
validation metric the search selected by, the trial's values, seconds, epochs, its run folder, and
the test metrics of the best trial only (looking at every trial's test score would select on the
test split). ``best``: a link to the best trial's run folder, which predict, evaluate and report
take like any run folder.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from optuna.trial import TrialState

from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.report import try_write_report
from neuroclass.io import write_text_atomic
from neuroclass.runs import RunFolder
from neuroclass.tuning.ensemble import build_ensemble
from neuroclass.tuning.rungs import rung_of
from neuroclass.tuning.trials import best_trial, ranked, retry_of

if TYPE_CHECKING:
    from neuroclass.tuning.search import Search, TuneResult

ENSEMBLE_PREFIX = "ensemble-top"  # the ensemble of the top trials: ensemble-top<its members>
STATE_ORDER = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.RUNNING: 2, TrialState.FAIL: 3,
               TrialState.WAITING: 4}


def trial_run(trial, folder: Path) -> Path | None:
    """The run folder of ``trial`` (an optuna FrozenTrial) as it lies now: ``folder/trials/<name>``
    when the study folder holds it (the folder was moved or copied since the trial recorded its
    absolute path), else the recorded path where it exists (another worker's --out on this
    machine); None without a run, or when neither exists (another machine's)."""
    recorded = trial.user_attrs.get("run")
    if not recorded:
        return None
    here = folder / "trials" / Path(recorded).name
    if Path(recorded).parent.name == "trials" and here.is_dir():
        return here
    return Path(recorded) if Path(recorded).is_dir() else None


def leaderboard_rows(study, folder: Path, best_test: dict | None = None) -> list[dict]:
    """One dict per trial of ``study`` (an optuna.Study), best first: COMPLETE as trials.ranked
    (the highest rung first, then by value in the study's direction), then PRUNED, RUNNING, FAIL,
    WAITING. ``best_test``: the best trial's test metrics."""
    best = best_trial(study)
    sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
    others = sorted((t for t in study.get_trials(deepcopy=False) if t.state != TrialState.COMPLETE),
                    key=lambda t: (STATE_ORDER.get(t.state, 9), sign * (t.value if t.value is not None else 0.0),
                                   t.number))
    rows = []
    for t in [*ranked(study), *others]:
        if t.user_attrs.get("surplus"):
            continue
        run = trial_run(t, folder) or t.user_attrs.get("run")
        row = {"trial": t.number, "state": t.state.name.lower(), "rung": rung_of(t), "value": t.value,
               "params": dict(t.params),
               "val_metrics": t.user_attrs.get("val_metrics"), "seconds": t.user_attrs.get("seconds"),
               "epochs": t.user_attrs.get("epochs"), "time_budget": t.user_attrs.get("time_budget"),
               "run": _relative(run, folder) if run else None, "retry_of": retry_of(t),
               "pruned_at_epoch": t.user_attrs.get("pruned_at_epoch"), "error": t.user_attrs.get("error"),
               "test": best_test if best is not None and t.number == best.number else None}
        rows.append(row)
    return rows


def leaderboard_csv(rows: list[dict], metric: str) -> str:
    """The rows as CSV: trial, state, rung, validation <metric>, one column per searched key,
    seconds, epochs, run, test <metric> (the best trial only)."""
    keys = sorted({k for r in rows for k in r["params"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", "state", "rung", f"val_{metric}", *keys, "seconds", "epochs", "run", f"test_{metric}"])
    for r in rows:
        test = (r["test"] or {}).get(metric)
        writer.writerow([r["trial"], r["state"], r["rung"], r["value"], *[r["params"].get(k) for k in keys],
                         None if r["seconds"] is None else round(r["seconds"], 2), r["epochs"], r["run"], test])
    return out.getvalue()


def link_best(folder: Path, run: Path) -> Path:
    """``folder/best`` -> ``run`` (a relative symbolic link, replaced atomically)."""
    link = folder / "best"
    tmp = folder / ".best.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(os.path.relpath(run, folder), tmp)
    os.replace(tmp, link)
    return link


def finish_study(search: "Search") -> "TuneResult":
    """Write the leaderboard, ``best``, the best run's report (by the budget's deadline) and the
    study's report.html; returns the TuneResult. With a shared study the best run may be another
    worker's on another machine: then there is no ``best`` link and no test metrics here."""
    from neuroclass.tuning.search import TuneResult
    from neuroclass.tuning.study_report import write_study_report

    folder, metric = search.folder, search.settings.metric
    best = best_trial(search.study)
    best_run, best_test, report = None, None, None
    if best is not None and trial_run(best, folder) is not None:
        best_run = trial_run(best, folder)
        best_test = RunFolder.open(best_run).metrics()
        link_best(folder, best_run)
    else:  # none, or another worker's on another machine: a link made before would name another
        with contextlib.suppress(FileNotFoundError):
            (folder / "best").unlink()
    rows = leaderboard_rows(search.study, folder, best_test)
    write_text_atomic(folder / "leaderboard.json", json.dumps(
        {"metric": metric, "direction": search.study.direction.name.lower(), "rows": rows}, indent=2, default=str))
    write_text_atomic(folder / "leaderboard.csv", leaderboard_csv(rows, metric))
    if search.settings.report and best_run is not None and not (best_run / "report.html").exists():
        deadline = None if search.deadline is None else search.deadline - 1.0
        try_write_report(best_run, deadline=deadline, clock=search.clock)
    ensemble = _top_ensemble(search) if search.settings.ensemble else None
    with contextlib.suppress(NeuroclassError):
        report = write_study_report(search, rows, best_run)
    return TuneResult(folder, best_run, rows, report, ensemble)


def _top_ensemble(search: "Search") -> Path | None:
    """``ensemble-top<N>/`` in the study folder: the mean of the calibrated probabilities of the
    top K finished trials (trials.ranked: with rungs, the longest trials first; tuning/ensemble.py),
    N of them: K, or all of them when fewer finished; the trials' run folders are its members by
    reference. Its report is written only without a time budget (an ensemble's report runs in
    full: `neuroclass report` writes it). None, with one warning, when it cannot be built."""
    k = search.settings.ensemble
    complete = [run for run in (trial_run(t, search.folder) for t in ranked(search.study)) if run is not None]
    if not complete:
        return None
    runs = complete[:k]  # fewer than k when fewer finished
    try:
        path = build_ensemble(runs, "mean", out=search.folder, name=f"{ENSEMBLE_PREFIX}{len(runs)}",
                              command=search.settings.command)
    except NeuroclassError as exc:
        warnings.warn(f"ensemble of the top {k} trials not built: {exc}", stacklevel=2)
        return None
    if search.deadline is None and search.settings.report:
        try_write_report(path)
    return path


def _relative(path: str | Path, folder: Path) -> str:
    """``path`` relative to the study folder when inside it (the folder can move), else as given."""
    try:
        return str(Path(path).resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path)
