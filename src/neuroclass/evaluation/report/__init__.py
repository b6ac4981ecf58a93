"""The run report: one self-contained HTML page plus report.json with every number on it.

inputs.py reads a run and computes logits, collect.py and diagnostics.py turn them into report.json,
plots.py and pictures.py draw the images, html.py, sections.py and data_quality.py write the page,
write.py ties it up.

Example::

    from neuroclass.evaluation.report import write_report
    write_report("runs/digits-mlp-20260101-120000")
    # -> PosixPath('runs/digits-mlp-20260101-120000/report.html')
"""
from neuroclass.evaluation.report.inputs import FromTraining
from neuroclass.evaluation.report.write import budget_lines, report_path, try_write_report, write_report

__all__ = ["FromTraining", "budget_lines", "report_path", "try_write_report", "write_report"]
