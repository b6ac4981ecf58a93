"""A search's report.html: one self-contained page (charts as data URIs) in the study folder.

Sections: the result (best trial, its validation and test metrics, a link to its run's report),
the leaderboard, the optimisation history (each trial's validation metric and the best so far),
parameter importances (Optuna's get_param_importances: fANOVA, Hutter et al. 2014) and one slice
per parameter (the metric against the parameter's value).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from matplotlib.ticker import MaxNLocator
from optuna.trial import TrialState

from neuroclass.evaluation.report.html import cards, chart, esc, fmt, note, page, section, table
from neuroclass.evaluation.report.plots import STYLE, new_figure, png_uri
from neuroclass.io import write_text_atomic
from neuroclass.tuning.rungs import rung_of

if TYPE_CHECKING:
    from neuroclass.tuning.search import Search

ROWS_SHOWN = 50  # leaderboard rows on the page (leaderboard.csv has all)


def write_study_report(search: "Search", rows: list[dict], best_run: Path | None) -> Path | None:
    """report.html in the study folder; None and one warning when it cannot be written (the
    leaderboard files stay the record)."""
    try:
        html = _page(search, rows, best_run)
        return write_text_atomic(search.folder / "report.html", html)
    except Exception as exc:  # a report never costs the search it describes
        warnings.warn(f"{search.folder / 'report.html'}: not written ({type(exc).__name__}: {exc})", stacklevel=2)
        return None


def _page(search: "Search", rows: list[dict], best_run: Path | None) -> str:
    import matplotlib

    s, study = search.settings, search.study
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    with matplotlib.rc_context(STYLE):
        parts = [("result", "Result", _result(search, rows, best_run)),
                 ("leaderboard", "Leaderboard", _leaderboard(rows, s.metric)),
                 ("history", "Optimisation history", _history(complete, s.metric, study.direction.name)),
                 ("importance", "Parameter importances", _importances(study, len(complete))),
                 ("slices", "Slices", _slices(complete, search.space, s.metric))]
    numbered = [(a, t, section(i, a, t, EXPLAIN[a], body)) for i, (a, t, body) in enumerate(parts, start=1)]
    subtitle = (f"{s.base.data.source} · {s.base.model.name} · {s.sampler} sampler, {s.pruner} pruning · "
                f"selected by validation {s.metric}")
    return page(f"Search {search.folder.name}", subtitle, numbered, f"study {study.study_name}")


EXPLAIN = {
    "result": "The best trial by the validation metric; its test metrics are the only test scores the search shows.",
    "leaderboard": "Every trial, best first. Pruned trials were stopped early by the pruner; failed ones did not finish.",
    "history": "Each finished trial's validation metric in the order they ran, and the best so far.",
    "importance": "How much of the metric's variation each parameter explains (fANOVA over the finished trials).",
    "slices": "The metric against each parameter's value: where good values lie.",
}


def _result(search: "Search", rows: list[dict], best_run: Path | None) -> str:
    best = next((r for r in rows if r["state"] == "complete"), None)
    if best is None:
        return note("No trial finished, so there is no best run.")
    metric = search.settings.metric
    test = (best["test"] or {}).get(metric)
    items = [(fmt(best["value"]), f"validation {metric}"), (fmt(test), f"test {metric}"),
             (str(sum(r["state"] in ("complete", "pruned") for r in rows)), "trials done"),
             (str(best["trial"]), "best trial")]
    link = ""
    if best_run is not None and (best_run / "report.html").exists():
        link = f'<p>The best run\'s own report: <a href="best/report.html">{esc(best["run"])}/report.html</a></p>'
    values = table(["parameter", "value"], [[k, _value(v)] for k, v in best["params"].items()])
    return cards(items) + link + values


def _leaderboard(rows: list[dict], metric: str) -> str:
    keys = sorted({k for r in rows for k in r["params"]})
    body = [[r["trial"], r["state"] + (f", rung {r['rung']}" if r.get("rung") else ""), fmt(r["value"]), *[_value(r["params"].get(k)) for k in keys],
             fmt(r["seconds"], 1), r["epochs"] if r["epochs"] is not None else "",
             fmt((r["test"] or {}).get(metric)) if r["test"] else ""] for r in rows[:ROWS_SHOWN]]
    more = note(f"{len(rows) - ROWS_SHOWN} more rows in leaderboard.csv") if len(rows) > ROWS_SHOWN else ""
    headers = ["trial", "state", f"val {metric}", *keys, "seconds", "epochs", f"test {metric}"]
    numeric = {0, 2, *range(3 + len(keys), 6 + len(keys))}
    return table(headers, body, numeric) + more


def _history(complete: list, metric: str, direction: str) -> str:
    if not complete:
        return note("No finished trial yet.")
    ordered = sorted(complete, key=lambda t: t.number)
    better = max if direction == "MAXIMIZE" else min
    best, running = None, []
    for t in ordered:
        best = t.value if best is None else better(best, t.value)
        running.append(best)
    fig = new_figure(6.0, 3.0)
    ax = fig.add_subplot()
    for rung in sorted({rung_of(t) for t in ordered}):  # successive halving: one marker per rung
        mine = [t for t in ordered if rung_of(t) == rung]
        ax.plot([t.number for t in mine], [t.value for t in mine], "os^Dv"[rung % 5],
                label="trial" if rung == 0 and len(ordered) == len(mine) else f"rung {rung}")
    ax.plot([t.number for t in ordered], running, "-", label="best so far")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"validation {metric}")
    ax.legend()
    return chart(png_uri(fig), "optimisation history")


def _importances(study: optuna.Study, complete: int) -> str:
    if complete < 2:
        return note("Importances need at least two finished trials.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning and fANOVA's numeric warnings
            found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:  # e.g. a parameter with one value only
        return note(f"Importances not computed: {exc}")
    if not found:
        return note("No parameter varied across the finished trials.")
    names = list(found)[::-1]
    fig = new_figure(6.0, 0.5 + 0.35 * len(names))
    ax = fig.add_subplot()
    ax.barh(names, [found[n] for n in names])
    ax.set_xlabel("importance (share of the variance)")
    return chart(png_uri(fig), "parameter importances") + table(
        ["parameter", "importance"], [[n, fmt(v, 3)] for n, v in found.items()], {1})


def _slices(complete: list, space, metric: str) -> str:
    if not complete:
        return note("No finished trial yet.")
    params = [p for p in space.params if any(p.key in t.params for t in complete)]
    if not params:
        return note("No parameter to show.")
    cols = min(3, len(params))
    fig = new_figure(3.0 * cols, 2.6 * math.ceil(len(params) / cols))
    for i, p in enumerate(params, start=1):
        ax = fig.add_subplot(math.ceil(len(params) / cols), cols, i)
        points = [(t.params[p.key], t.value) for t in complete if p.key in t.params]
        if p.choices is not None:  # the listed values in their order, as positions
            order = list(p.choices)
            ax.set_xticks(range(len(order)), [str(c) for c in order])
            points = [(order.index(x), v) for x, v in points]
        ax.plot([x for x, _ in points], [v for _, v in points], "o", alpha=0.7)
        if p.log:
            ax.set_xscale("log")
        ax.set_xlabel(p.key)
        ax.set_ylabel(f"val {metric}" if (i - 1) % cols == 0 else "")
    return chart(png_uri(fig), "slices")


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
