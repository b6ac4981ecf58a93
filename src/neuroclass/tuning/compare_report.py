"""The end of a comparison: the leaderboard files, ``best`` and the comparison's report.html.

``leaderboard.csv`` / ``leaderboard.json``: one row per entry, best first by the validation metric
(never by a test score: choosing by the test split would make its score an optimistic estimate),
the entries without a validation score next, the failed ones last with their error. ``best``: a
link to the best entry's run (or cross-validation summary) folder, as ``neuroclass tune`` makes
one. ``report.html``: one self-contained page: the result, the leaderboard, a bar chart of the
validation metric per entry (+- its standard deviation over the folds under cross-validation) and
links to each run's own report.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from neuroclass.errors import counted
from neuroclass.evaluation.report.html import cards, chart, esc, fmt, note, page, section, table
from neuroclass.evaluation.report.plots import STYLE, TRAIN, new_figure, png_uri
from neuroclass.io import write_text_atomic
from neuroclass.tuning.cv import METRICS
from neuroclass.tuning.leaderboard import link_best

if TYPE_CHECKING:
    from neuroclass.tuning.compare import CompareSettings

TEST_COLUMNS = ("accuracy", "macro_f1", "log_loss")


def ranked(rows: list[dict], metric: str) -> list[dict]:
    """``rows`` best first: by the validation ``metric`` in its direction (cv.METRICS), then the
    rows without a validation score in their order, then the failed rows; each with its "rank".

    >>> [r["entry"] for r in ranked([{"entry": "a", "val": 0.8, "error": None},
    ...                               {"entry": "b", "val": 0.9, "error": None},
    ...                               {"entry": "c", "val": None, "error": "boom"}], "accuracy")]
    ['b', 'a', 'c']
    """
    sign = -1.0 if METRICS[metric] == "maximize" else 1.0
    scored = sorted((r for r in rows if not r["error"] and r["val"] is not None), key=lambda r: sign * r["val"])
    unscored = [r for r in rows if not r["error"] and r["val"] is None]
    failed = [r for r in rows if r["error"]]
    return [{**r, "rank": i} for i, r in enumerate([*scored, *unscored, *failed], start=1)]


def leaderboard_csv(rows: list[dict], metric: str) -> str:
    """The ranked rows as CSV, one column per field (options as JSON)."""
    headers = ["rank", "entry", "family", "features", "options", f"val_{metric}", f"val_{metric}_std",
               *[f"test_{name}{tail}" for name in TEST_COLUMNS for tail in ("", "_std")], "train_seconds",
               "predict_seconds_per_1000", "model_bytes", "parameters", "time_budget", "run", "report", "error"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for r in rows:
        writer.writerow([r["rank"], r["entry"], r["family"], r["features"], json.dumps(r["options"]) if r["options"]
                         else "", r["val"], r["val_std"],
                         *[r[f"test_{name}{tail}"] for name in TEST_COLUMNS for tail in ("", "_std")],
                         _round(r["train_seconds"], 3), _round(r["predict_seconds_per_1000"], 6), r["model_bytes"],
                         r["parameters"], _round(r["time_budget"], 3), r["run"], r["report"], r["error"]])
    return out.getvalue()


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def finish(folder: Path, settings: "CompareSettings", rows: list[dict],
           partial: bool = False) -> tuple[Path, Path | None, list[dict], Path | None]:
    """Write the leaderboard files, ``best`` and report.html of the comparison in ``folder``;
    (folder, the best entry's folder or None, the ranked rows, report.html or None). ``partial``:
    an interrupted comparison (its page says so)."""
    rows = ranked(rows, settings.metric)
    best_row = next((r for r in rows if not r["error"]), None)
    best = None if best_row is None else folder / best_row["run"]
    record = {"metric": settings.metric, "direction": METRICS[settings.metric], "cv": settings.cv,
              "time_budget": settings.base.train.time_budget, "data": settings.base.data.source,
              "entries": [e.name for e in settings.entries], "finished": not partial, "rows": rows}
    write_text_atomic(folder / "leaderboard.json", json.dumps(record, indent=2))
    write_text_atomic(folder / "leaderboard.csv", leaderboard_csv(rows, settings.metric))
    if best is not None:
        link_best(folder, best)
    else:
        with contextlib.suppress(FileNotFoundError):
            (folder / "best").unlink()
    return folder, best, rows, write_compare_report(folder, settings, rows, partial)


def write_compare_report(folder: Path, settings: "CompareSettings", rows: list[dict],
                         partial: bool = False) -> Path | None:
    """report.html in ``folder``; None and one warning when it cannot be written (the leaderboard
    files stay the record)."""
    try:
        return write_text_atomic(folder / "report.html", _page(folder, settings, rows, partial))
    except Exception as exc:  # a report never costs the comparison it describes
        warnings.warn(f"{folder / 'report.html'}: not written ({type(exc).__name__}: {exc})", stacklevel=2)
        return None


EXPLAIN = {
    "result": "The entry with the best validation score; every entry trained on the same training "
              "examples and was tested on the same test examples.",
    "leaderboard": "Every entry, best first by the validation metric (the test split only reports). "
                   "Prediction time is per 1,000 rows of the test pass; size counts the model's files.",
    "chart": "The validation metric of each entry that finished.",
    "runs": "Each entry's own run folder and report: its training curve, per-class metrics, confusion "
            "and mistakes.",
}


def _page(folder: Path, settings: "CompareSettings", rows: list[dict], partial: bool) -> str:
    import matplotlib

    metric = settings.metric
    with matplotlib.rc_context(STYLE):
        parts = [("result", "Result", _result(rows, metric, partial)),
                 ("leaderboard", "Leaderboard", _leaderboard(rows, metric, bool(settings.cv))),
                 ("chart", f"Validation {metric}", _chart(rows, metric, bool(settings.cv))),
                 ("runs", "Runs", _runs(rows))]
    numbered = [(a, t, section(i, a, t, EXPLAIN[a], body)) for i, (a, t, body) in enumerate(parts, start=1)]
    how = f"stratified {settings.cv}-fold cross-validation" if settings.cv else "one train/validation/test split"
    budget = settings.base.train.time_budget
    subtitle = (f"{settings.base.data.source} · {counted(len(rows), 'entry', 'entries')} · {how}, "
                f"seed {settings.base.train.seed} · "
                + (f"time budget {budget:g} s shared by the entries · " if budget else "")
                + f"ranked by validation {metric}")
    return page(f"Comparison {folder.name}", subtitle, numbered,
                "leaderboard.csv and leaderboard.json hold every number")


def _pm(mean: float | None, std: float | None, digits: int = 4) -> str:
    return fmt(mean, digits) + ("" if std is None or mean is None else f" ± {fmt(std, digits)}")


def _result(rows: list[dict], metric: str, partial: bool) -> str:
    best = next((r for r in rows if not r["error"]), None)
    stopped = note("The comparison was interrupted; the entries not listed did not train.") if partial else ""
    if best is None:
        return stopped + note("No entry finished: " + "; ".join(f"{r['entry']}: {r['error']}" for r in rows))
    items = [(best["entry"], "best entry"), (_pm(best["val"], best["val_std"]), f"validation {metric}"),
             (_pm(best["test_accuracy"], best["test_accuracy_std"]), "test accuracy"),
             (f"{sum(not r['error'] for r in rows)} of {len(rows)}", "entries finished")]
    link = ""
    if best["report"]:
        link = f'<p>The best entry\'s own report: <a href="{esc(best["report"])}">{esc(best["report"])}</a></p>'
    return stopped + cards(items) + link


def _leaderboard(rows: list[dict], metric: str, cv: bool) -> str:
    headers = ["rank", "entry", f"val {metric}", "test accuracy", "test macro F1", "test log loss",
               "training s", "predict s / 1000", "model size", "parameters"]
    body = [[r["rank"], r["entry"], _pm(r["val"], r["val_std"]),
             *[_pm(r[f"test_{name}"], r[f"test_{name}_std"]) for name in TEST_COLUMNS],
             fmt(r["train_seconds"], 2), fmt(r["predict_seconds_per_1000"], 3), _size(r["model_bytes"]),
             fmt(r["parameters"]) if r["parameters"] is not None else ""] for r in rows if not r["error"]]
    html = table(headers, body, {0, *range(2, 10)}) if body else note("No entry finished.")
    if cv:
        html += note("mean ± standard deviation over the folds; training seconds summed over the folds")
    failed = [[r["entry"], r["error"]] for r in rows if r["error"]]
    return html + ("<h3>Failed entries</h3>" + table(["entry", "error"], failed) if failed else "")


def _size(nbytes: int | None) -> str:
    if nbytes is None:
        return "n/a"
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{nbytes} B"


def _chart(rows: list[dict], metric: str, cv: bool) -> str:
    done = [r for r in rows if not r["error"] and r["val"] is not None]
    if not done:
        return note("No entry has a validation score (a validation split: data.val_fraction > 0, or --cv).")
    done = done[::-1]  # the best at the top
    fig = new_figure(6.0, 0.6 + 0.35 * len(done))
    ax = fig.add_subplot()
    errors = [r["val_std"] or 0.0 for r in done] if cv else None
    bars = ax.barh([r["entry"] for r in done], [r["val"] for r in done], xerr=errors, capsize=3 if cv else 0,
                   color=TRAIN)
    ax.bar_label(bars, labels=[_pm(r["val"], r["val_std"]) for r in done], padding=4, fontsize=7)
    ax.margins(x=0.25)  # room for the labels
    ax.set_xlabel(f"validation {metric}" + (" (mean ± std over the folds)" if cv else ""))
    return chart(png_uri(fig), f"validation {metric} per entry")


def _runs(rows: list[dict]) -> str:
    items = []
    for r in rows:
        if r["error"]:
            continue
        report = (f' (<a href="{esc(r["report"])}">report</a>)' if r["report"] else " (no report.html)")
        items.append(f'<li>{esc(r["entry"])}: <a href="{esc(r["run"])}/">{esc(r["run"])}</a>{report}</li>')
    return f"<ul>{''.join(items)}</ul>" if items else note("No run finished.")
