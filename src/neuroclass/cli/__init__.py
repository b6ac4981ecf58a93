"""The `neuroclass` command: parses arguments, builds a config, calls the library, prints.

Bad input ends with one line "neuroclass: error: ..." and exit code 2 (a traceback with --debug); so
does a parse error, an unknown option with a did-you-mean (cli/parser.py).
The library's INFO log records (the "neuroclass" loggers: what a time budget chose, downloads)
print as plain lines on stdout, unless --quiet; warnings as "neuroclass: warning: ..." on stderr.
main() leaves the logging and warnings set-up of the process as it found it.

While `train` runs, Ctrl-C (SIGINT), SIGTERM or SIGHUP asks training to stop after the current
step (neuroclass/interrupts.py): the run's checkpoint is written, one line gives the command that
resumes it, and the exit code is 130 (143 for SIGTERM, 129 for SIGHUP). A second Ctrl-C stops at
once.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from neuroclass import __version__
from neuroclass.cli import compare, ensemble, explain, runs, tools, train, tune
from neuroclass.cli.common import EXIT_BAD_INPUT
from neuroclass.cli.parser import Parser
from neuroclass.console import log_lines
from neuroclass.errors import NeuroclassError

GROUPS = (train, tune, compare, runs, explain, ensemble, tools)  # each: add_parsers(sub) and COMMANDS {name: handler}
COMMANDS = {name: handler for group in GROUPS for name, handler in group.COMMANDS.items()}


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="neuroclass", description="Train, evaluate and use neural-network classifiers.")
    parser.add_argument("--version", action="version", version=f"neuroclass {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None, before_rename: Callable[[Path], None] | None = None) -> int:
    """Run the command ``argv`` (default sys.argv[1:]); the exit code. ``before_rename(tmp)``: called
    as each training checkpoint's files are on disk, before its rename (a moment for tests to act)."""
    started = time.perf_counter()  # a time budget counts from here: loading the libraries is part of it
    args = _parser().parse_args(argv)
    args.started = started
    args.before_rename = before_rename
    # the words as given, for the run's record (sys.argv is the caller's when main() is called)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    with log_lines(quiet=getattr(args, "quiet", False)):
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except NeuroclassError as exc:
        if args.debug:
            raise
        print(f"neuroclass: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("neuroclass: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
