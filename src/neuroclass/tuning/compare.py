"""Model families side by side on one data set: ``neuroclass compare DATA --models mlp,xgboost,svm+hog``.

Each entry (compare_entries.py) trains through the ordinary pipeline -- ``pipeline.train``, or
``cv.cross_validate`` with ``cv=K`` -- with the same seed and split fractions, so every entry sees
the same training, validation and test examples (or the same folds). With a time budget, each entry
is given what is left of it, less the comparison's own finish (FINISH_SECONDS), divided by the
entries still to run (``entry_share``): an entry that ends early gives its time to the ones after
it, and the whole ends within the budget. The classical families train first and the networks,
which spend all they are given, last (``training_order``), so the networks share evenly what the
classical fits left. Without a budget, each trains with the config's epochs or its family's
defaults, in the order given.

The comparison folder ``<out>/compare-<data>-<stamp>/`` holds one run folder (or cross-validation
summary folder) per entry, the leaderboard (``leaderboard.csv`` / ``.json``, best first by the
validation metric), ``best`` (a link to the best entry's folder) and ``report.html``
(compare_report.py). An entry that fails is a row with its error; the others go on.

Example::

    result = compare(CompareSettings(load_config(overrides=["data.source=digits"]),
                                     parse_entries("mlp,logreg,knn")))
    result.rows[0]["entry"], result.best  # the best entry, and its run folder in the comparison folder
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from neuroclass import pipeline
from neuroclass.config import Config
from neuroclass.errors import NeuroclassError, RunInterrupted
from neuroclass.evaluation.report import try_write_report
from neuroclass.runs import RunFolder
from neuroclass.runs.names import new_stamped_folder
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.families import is_classical
from neuroclass.tuning.compare_entries import Entry, checked_configs
from neuroclass.tuning.compare_report import finish
from neuroclass.tuning.cv import METRICS, check_folds, cross_validate, summarize
from neuroclass.tuning.cv_budget import fold_budget

# seconds of the budget kept for the comparison's own end: the leaderboard, report.html (matplotlib
# ~0.5 s, one chart ~0.3 s) and the `best` link
FINISH_SECONDS = 3.0
TEST_METRICS = ("accuracy", "macro_f1", "log_loss")  # the test metrics of each row


@dataclass(frozen=True)
class CompareSettings:
    """A comparison as the command line gives it. ``base``: the config every entry starts from
    (train.time_budget: the whole comparison's, seconds; None: each entry trains in full);
    ``entries``: what to compare; ``cv``: score each entry by stratified K-fold cross-validation;
    ``metric``: the validation metric that ranks (cv.METRICS); ``report``: each run's report.html
    (the comparison's own report.html is always written); ``command``: recorded in each run;
    ``given``: the dotted keys the user set in ``base`` (config.given_keys), which a glassbox entry
    keeps (None: values equal to the config's defaults count as unset)."""

    base: Config
    entries: list[Entry]
    cv: int | None = None
    metric: str = "accuracy"
    report: bool = True
    command: str = ""
    given: frozenset[str] | None = None

    def validate(self) -> None:
        """NeuroclassError for a metric outside cv.METRICS or a fold count below 2."""
        if self.metric not in METRICS:
            raise NeuroclassError(f"--metric must be one of {', '.join(METRICS)}. Got {self.metric!r} instead.")
        if self.cv is not None:
            check_folds(self.cv)


@dataclass
class CompareResult:
    """A finished comparison: its ``folder``, the best entry's run (or summary) folder ``best``
    (None when every entry failed), the leaderboard ``rows`` (best first) and ``report``
    (report.html; None when it could not be written)."""

    folder: Path
    best: Path | None
    rows: list[dict]
    report: Path | None


def compare(settings: CompareSettings, stop: StopRequest | None = None, callbacks: list[Callback] | tuple = (),
            clock: Callable[[], float] = time.perf_counter, started: float | None = None,
            on_entry: Callable[[dict], None] | None = None) -> CompareResult:
    """Train every entry of ``settings`` (under a time budget, in ``training_order``, each with
    its ``entry_share``; else in the order given) and write the comparison folder into
    ``settings.base.out``. ``clock``: seconds, for the time budget, counted from ``started``
    (default: now); ``stop``: a request that ends the entry training now (its run can be resumed)
    and the comparison; ``callbacks``: training callbacks of every entry; ``on_entry(row)``: called
    as each entry ends (the CLI prints a line).

    Returns a CompareResult. Raises NeuroclassError for a bad setting, entry or data before
    anything trains, and when every entry failed (the folder then records each error; when no entry
    wrote anything, the folder is removed and the error names the first entry's);
    RunInterrupted when ``stop`` is requested (the leaderboard of the finished entries is written;
    an entry stopped while training keeps its partial run folder for ``neuroclass train --resume``).
    """
    settings.validate()
    configs = checked_configs(settings.base, settings.entries, settings.given)
    start = clock() if started is None else started
    budget = settings.base.train.time_budget
    deadline = None if budget is None else start + budget
    folder = new_stamped_folder(Path(settings.base.out), "compare", settings.base.data.source, "comparison")
    done: dict[int, dict] = {}  # entry position -> its row; the rows keep the order given
    order = training_order(settings.entries) if deadline is not None else range(len(configs))
    try:
        for i in order:
            if stop is not None and stop.requested:  # a classical fit does not stop; the next entry does not start
                raise RunInterrupted(folder, stop.detail, finished=True)
            share = None if deadline is None else entry_share(deadline - clock(), len(configs) - len(done))
            done[i] = _run_entry(settings, settings.entries[i], configs[i], folder, share,
                                 _Hooks(stop, callbacks, clock))
            if on_entry is not None:
                on_entry(done[i])
    except (RunInterrupted, KeyboardInterrupt):
        finish(folder, settings, [done[i] for i in sorted(done)], partial=True)
        raise
    rows = [done[i] for i in sorted(done)]
    if all(row["error"] for row in rows) and not any(folder.iterdir()):  # no entry wrote anything
        folder.rmdir()
        raise NeuroclassError(f"every entry failed, so nothing was written; the first, {rows[0]['entry']}: "
                              f"{rows[0]['error']}")
    result = CompareResult(*finish(folder, settings, rows))
    if result.best is None:
        first = next(r for r in rows if r["error"])
        raise NeuroclassError(f"every entry failed (see {folder / 'leaderboard.csv'}); the first, "
                              f"{first['entry']}: {first['error']}")
    return result


def entry_share(seconds_left: float, entries_left: int) -> float:
    """Seconds for the next entry: what is left of the budget (``seconds_left``), less the
    comparison's own finish (FINISH_SECONDS), divided by the entries still to run. Recomputed as
    each entry ends, so what an entry did not use goes to the ones after it; may be <= 0 when the
    budget is spent.

    >>> entry_share(63.0, 5), entry_share(43.0, 2)
    (12.0, 20.0)
    """
    return fold_budget(seconds_left - FINISH_SECONDS, entries_left)


def training_order(entries: list[Entry]) -> list[int]:
    """The order in which a comparison under a time budget trains ``entries`` (their positions):
    the classical families first, then the networks (torch families and the glass-box network),
    each group in the order given. A classical fit usually ends well within its share (early
    stopping, all rows fitted); a network trains until its share is spent. Training the networks
    last gives them, evenly, the time the classical entries left, instead of holding shares back
    for entries that do not use them while the first network trains on a fraction of the budget.

    >>> training_order([Entry("mlp", "mlp"), Entry("logreg", "logreg"), Entry("cnn", "cnn")])
    [1, 0, 2]
    """
    classical = [i for i, entry in enumerate(entries) if is_classical(entry.family)]
    return classical + [i for i in range(len(entries)) if i not in classical]


@dataclass(frozen=True)
class _Hooks:
    """What the caller gives every entry's training: a stop request, callbacks and the clock."""

    stop: StopRequest | None
    callbacks: list[Callback] | tuple
    clock: Callable[[], float]


def _run_entry(settings: CompareSettings, entry: Entry, cfg: Config, folder: Path, share: float | None,
               hooks: _Hooks) -> dict:
    """Train one entry with ``share`` seconds (None: no budget); its leaderboard row, with the
    error of a failed entry. Interrupts pass through."""
    clock = hooks.clock
    if share is not None and share <= 0:
        return failed_row(entry, "not trained: the time budget was spent before this entry; give "
                                 "--time-budget more time", share)
    cfg = replace(cfg, out=str(folder), train=replace(cfg.train, time_budget=share))
    try:
        if settings.cv:
            result = cross_validate(cfg, settings.cv, callbacks=hooks.callbacks, command=settings.command,
                                    stop=hooks.stop, clock=clock, started=clock(), name=entry.slug)
            if settings.report and share is None:  # the fold ensemble's report runs in full
                try_write_report(result.path)
            return cv_row(entry, result, settings.metric, share, folder)
        result = pipeline.train(cfg, callbacks=hooks.callbacks, command=settings.command, report=settings.report,
                                stop=hooks.stop, clock=clock, started=clock(), out=folder, name=entry.slug)
        return run_row(entry, result.path, result.val_metrics, settings.metric, share, folder)
    except (RunInterrupted, KeyboardInterrupt):
        raise
    except NeuroclassError as exc:
        return failed_row(entry, str(exc), share)
    except Exception as exc:  # one family's failure (a library's own error) must not cost the others
        return failed_row(entry, f"{type(exc).__name__}: {exc}", share)


def base_row(entry: Entry, share: float | None) -> dict:
    """The row's fields every entry has, the measured ones None."""
    row = {"entry": entry.name, "family": entry.family,
           "features": None if entry.features == "none" else entry.features,
           "options": dict(entry.options), "val": None, "val_std": None}
    for name in TEST_METRICS:
        row[f"test_{name}"] = row[f"test_{name}_std"] = None
    row.update({"train_seconds": None, "predict_seconds_per_1000": None, "model_bytes": None, "parameters": None,
                "time_budget": share, "run": None, "report": None, "error": None})
    return row


def failed_row(entry: Entry, error: str, share: float | None) -> dict:
    return {**base_row(entry, share), "error": " ".join(error.split())}


def run_row(entry: Entry, path: Path, val_metrics: dict | None, metric: str, share: float | None,
            folder: Path) -> dict:
    """The row of a finished run folder ``path``: its validation ``metric`` (None without a
    validation split), test metrics, seconds, size and report."""
    run = RunFolder.open(path)
    row = base_row(entry, share)
    row["val"] = None if val_metrics is None else val_metrics[metric]
    test = run.metrics()
    for name in TEST_METRICS:
        row[f"test_{name}"] = test.get(name)
    row.update(_cost(run))
    row["run"] = _relative(path, folder)
    if (path / "report.html").is_file():
        row["report"] = _relative(path / "report.html", folder)
    return row


def cv_row(entry: Entry, result, metric: str, share: float | None, folder: Path) -> dict:
    """The row of a finished cross-validation (cv.CVResult): the validation ``metric`` and each
    test metric as mean and standard deviation over the folds; seconds summed over the folds;
    prediction time, size and parameters of one fold's model (their mean)."""
    row = base_row(entry, share)
    val = result.summary["metrics"][metric]
    row["val"], row["val_std"] = val["mean"], val["std"]
    test = summarize([fold.test_metrics for fold in result.folds])
    for name in TEST_METRICS:
        row[f"test_{name}"], row[f"test_{name}_std"] = test[name]["mean"], test[name]["std"]
    costs = [_cost(RunFolder.open(fold.path)) for fold in result.folds]
    row["train_seconds"] = sum(c["train_seconds"] or 0.0 for c in costs)
    for key in ("predict_seconds_per_1000", "model_bytes", "parameters"):
        known = [c[key] for c in costs if c[key] is not None]
        row[key] = sum(known) / len(known) if known else None
    row["model_bytes"] = None if row["model_bytes"] is None else int(row["model_bytes"])
    row["parameters"] = None if row["parameters"] is None else int(row["parameters"])
    row["run"] = _relative(result.path, folder)
    if (result.path / "report.html").is_file():
        row["report"] = _relative(result.path / "report.html", folder)
    return row


def _cost(run: RunFolder) -> dict:
    """Training seconds, prediction seconds per 1,000 rows (the run's test pass under its inference
    policy), bytes of its model files, and a network's parameters (None for a classical family)."""
    timing, meta = run.timing(), run.meta()
    tested = run.metrics().get("n") or 0
    seconds = timing.get("test_seconds")
    files = ["model.safetensors", "model.json"] + ([meta["classical"]["file"]] if meta.get("classical") else [])
    size = sum(run.file(name).stat().st_size for name in files if run.file(name).is_file())
    parameters = None
    if not meta.get("classical"):
        model, _ = run.load_model()
        parameters = int(sum(p.numel() for p in model.parameters()))
    return {"train_seconds": timing.get("train_seconds"),
            "predict_seconds_per_1000": 1000 * seconds / tested if seconds and tested else None,
            "model_bytes": size, "parameters": parameters}


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path)
