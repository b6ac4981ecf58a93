"""``write_report``: a run folder in, report.html and report.json out (both written atomically)."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

from neuroclass.io import write_text_atomic
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.report.collect import collect
from neuroclass.evaluation.report.html import page
from neuroclass.evaluation.report.inputs import load_inputs
from neuroclass.evaluation.report.pictures import draw_pictures
from neuroclass.evaluation.report.sections import render_sections
from neuroclass.runs import RunFolder


def report_path(run: str | Path, data: str | None = None, out: str | Path | None = None) -> Path:
    """Where the report of ``run`` goes (see ``RunFolder.report_path``).

    >>> report_path("runs/x", out="a/r.html")
    PosixPath('a/r.html')
    """
    return RunFolder(run).report_path(data, out)


def write_report(run: str | Path, data: str | None = None, out: str | Path | None = None) -> Path:
    """Write the report of ``run`` (evaluated on its test split, or on ``data``) and return the
    HTML path; report.json beside it holds every number on the page.

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
    inputs = load_inputs(run, data)  # a missing or incomplete RUN fails here, with its own message
    report = collect(inputs)
    pictures = draw_pictures(report, inputs)
    report["report"]["seconds"] = round(time.perf_counter() - start, 3)
    title = f"neuroclass report: {inputs.run.name}"
    subtitle = (f"{report['summary']['task']}; evaluated on {inputs.eval_what}; "
                f"generated {report['report']['generated']}")
    document = page(title, subtitle, render_sections(report, pictures),
                    f"Made by neuroclass {inputs.environment.get('neuroclass', '')} from {inputs.run}. "
                    f"Every number is in {html_path.with_suffix('.json').name}.")
    try:
        write_text_atomic(html_path.with_suffix(".json"), json.dumps(report, indent=2, allow_nan=False))
        write_text_atomic(html_path, document)
    except OSError as exc:
        raise NeuroclassError(f"{html_path}: cannot write the report ({exc.strerror or exc}); pass "
                              "--out with a folder you can write to") from None
    return html_path


def try_write_report(run: str | Path, data: str | None = None) -> Path | None:
    """``write_report``, or None and one warning line when it fails: a report must never cost the
    finished run (or evaluation) it describes.

    Example::

        try_write_report("runs/x")
    """
    try:
        return write_report(run, data)
    except Exception as exc:  # any failure: the run folder is complete and stays as it is
        warnings.warn(f"report not written ({type(exc).__name__}: {exc}); retry with "
                      f"'neuroclass report {run}'", stacklevel=2)
        return None
