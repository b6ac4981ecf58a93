"""``write_report``: a run folder in, report.html and report.json out (both written atomically).

Given a deadline (a time-budgeted ``train``), the optional analyses run in full, on a sample or not
at all, as the time left allows (timebox.py, costs.py); report.json's "report" -> "budget" records
each decision and the page's summary says what was sampled or skipped.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Callable

from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.report.collect import collect
from neuroclass.evaluation.report.costs import time_box
from neuroclass.evaluation.report.ensemble import write_ensemble_report
from neuroclass.evaluation.report.html import page, save_page
from neuroclass.evaluation.report.inputs import FromTraining, load_inputs
from neuroclass.evaluation.report.pictures import draw_pictures, hold_time
from neuroclass.evaluation.report.sections import render_sections
from neuroclass.runs import RunFolder, is_ensemble_folder


def report_path(run: str | Path, data: str | None = None, out: str | Path | None = None) -> Path:
    """Where the report of ``run`` goes (see ``RunFolder.report_path``).

    >>> report_path("runs/x", out="a/r.html")
    PosixPath('a/r.html')
    """
    return RunFolder(run).report_path(data, out)


def write_report(run: str | Path, data: str | None = None, out: str | Path | None = None,
                 deadline: float | None = None, clock: Callable[[], float] = time.perf_counter,
                 known: FromTraining | None = None) -> Path:
    """Write the report of ``run`` (evaluated on its test split, or on ``data``) and return the
    HTML path; report.json beside it holds every number on the page. ``deadline``: a ``clock()``
    reading (seconds) by which the report should be written: its optional analyses are sampled or
    skipped to fit (None: all in full). ``known``: the data and logits of the process that trained
    the run (not loaded or computed again). An ensemble folder gets the ensemble's report
    (ensemble.py: a members table in place of the one model's training), in full.

    Example::

        write_report("runs/fashion-mnist-cnn-20260101-120000")
        # -> PosixPath('runs/fashion-mnist-cnn-20260101-120000/report.html')
    """
    start = time.perf_counter()
    html_path = report_path(run, data, out)
    if out is not None:  # fail before the slow part
        try:
            html_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NeuroclassError(f"--out '{out}': cannot create folder {html_path.parent} ({exc.strerror or exc}); "
                                  "pass a folder you can write to") from None
    if is_ensemble_folder(run):
        return write_ensemble_report(run, data, html_path)
    inputs = load_inputs(run, data, known)  # a missing or incomplete RUN fails here, with its own message
    box = time_box(inputs, deadline, clock)
    hold_time(box, inputs.kind)
    report = collect(inputs, box)
    pictures = draw_pictures(report, inputs, box)
    report["report"]["budget"] = box.record()
    report["report"]["seconds"] = round(time.perf_counter() - start, 3)
    title = f"neuroclass report: {inputs.run.name}"
    subtitle = (f"{report['summary']['task']}; evaluated on {inputs.eval_what}; "
                f"generated {report['report']['generated']}")
    document = page(title, subtitle, render_sections(report, pictures),
                    f"Made by neuroclass {inputs.environment.get('neuroclass', '')} from {inputs.run}. "
                    f"Every number is in {html_path.with_suffix('.json').name}.")
    return save_page(html_path, report, document)


def try_write_report(run: str | Path, data: str | None = None, deadline: float | None = None,
                     clock: Callable[[], float] = time.perf_counter,
                     known: FromTraining | None = None) -> Path | None:
    """``write_report`` (``deadline``, ``clock``, ``known``: as there), or None and one warning
    line when it fails: a report must never cost the finished run (or evaluation) it describes.

    Example::

        try_write_report("runs/x")
    """
    try:
        return write_report(run, data, deadline=deadline, clock=clock, known=known)
    except Exception as exc:  # any failure: the run folder is complete and stays as it is
        warnings.warn(f"report not written ({type(exc).__name__}: {exc}); retry with "
                      f"'neuroclass report {run}'", stacklevel=2)
        return None


def budget_lines(html_path: str | Path) -> list[str]:
    """The analyses the report at ``html_path`` sampled or skipped to meet its deadline, one line
    each, from report.json beside it ([] when it ran them all or has no record of them).

    Example::

        budget_lines("runs/x/report.html")
        # -> ['skipped: robustness checks (needs about 2.4 s; the time budget left 0.8 s)']
    """
    try:
        record = json.loads(Path(html_path).with_suffix(".json").read_text())["report"].get("budget") or {}
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [part["line"] for part in record.get("parts", []) if part.get("line")]
