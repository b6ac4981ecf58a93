"""What every subcommand shares: --debug, the config options, the exit code of bad input."""
from __future__ import annotations

import argparse

EXIT_BAD_INPUT = 2


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def add_config_options(p: argparse.ArgumentParser) -> None:
    """--config FILE and repeatable --set SECTION.KEY=VALUE, as train takes them."""
    p.add_argument("--config", help="YAML config file (e.g. a run's config.yaml to replay it)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value; repeatable")
