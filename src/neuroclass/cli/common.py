"""What every subcommand shares: --debug, the config options, the exit code of bad input."""
from __future__ import annotations

import argparse
import sys

EXIT_BAD_INPUT = 2


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def add_config_options(p: argparse.ArgumentParser) -> None:
    """--config FILE and repeatable --set SECTION.KEY=VALUE, as train takes them."""
    p.add_argument("--config", help="YAML config file (e.g. a run's config.yaml to replay it)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value; repeatable")


def report_after(run, data: str | None = None, stream=None) -> None:
    """Write the report after a finished train/evaluate/ensemble; a failure is one warning, never an
    error (report.html in the run folder, or report-<data>.html for an evaluation on --data)."""
    from neuroclass.evaluation.report import try_write_report

    path = try_write_report(run, data)
    if path is not None:
        print(f"report: {path}", file=stream or sys.stdout)
