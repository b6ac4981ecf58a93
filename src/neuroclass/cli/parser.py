"""The command line's argument parser: argparse, with every parse error one line and exit code 2.

An option the command does not take gets a did-you-mean from the command's own options
("neuroclass: error: unknown option --modle; did you mean --model?"), in place of argparse's usage
block and "unrecognized arguments"; any other parse error (a missing argument, a bad choice) is the
same one line, pointing to the command's --help.

>>> parser = Parser(prog="neuroclass")
>>> sub = parser.add_subparsers(dest="command")
>>> _ = sub.add_parser("train").add_argument("--model")
>>> unknown_words(chosen_parser(parser, parser.parse_known_args(["train", "--modle", "mlp"])[0]), ["--modle", "mlp"])
'unknown option --modle; did you mean --model?'
"""
from __future__ import annotations

import argparse
import re
from typing import NoReturn, Sequence

from neuroclass.cli.common import EXIT_BAD_INPUT
from neuroclass.registry import closest

NUMBER = re.compile(r"-\d+(\.\d*)?([eE][-+]?\d+)?")  # a negative number is a value, not an option


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line on stderr, "neuroclass: error: ...",
    exiting with code 2 (SystemExit, as argparse does). Sub-commands' parsers are of this class too
    (argparse makes them of their parent's class)."""

    def parse_args(self, args: Sequence[str] | None = None,
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """As argparse's, but words no option or argument takes end with ``unknown_words``' line."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.exit(EXIT_BAD_INPUT, f"neuroclass: error: {unknown_words(chosen_parser(self, parsed), extras)}\n")
        return parsed

    def error(self, message: str) -> NoReturn:
        """argparse's parse errors, as one line that points to the command's --help."""
        self.exit(EXIT_BAD_INPUT, f"neuroclass: error: {message}; see '{self.prog} --help'\n")


def chosen_parser(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub-)command that ``parsed`` ran: ``parser`` followed down its
    sub-commands by the names ``parsed`` holds (``neuroclass data get`` -> the parser of ``get``)."""
    while True:
        chosen = None
        for action in _actions(parser):
            name = getattr(parsed, action.dest, None)
            if isinstance(action.choices, dict) and isinstance(name, str) and name in action.choices:
                chosen = action.choices[name]
        if not isinstance(chosen, argparse.ArgumentParser):
            return parser
        parser = chosen


def unknown_words(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """The error for the words ``extras`` that ``parser`` took no option or argument for: the first
    unknown option with the closest of the parser's options, else the unexpected arguments.

    >>> p = Parser(prog="neuroclass x")
    >>> _ = p.add_argument("--epochs")
    >>> unknown_words(p, ["--epoch=3"]), unknown_words(p, ["--zzz"]), unknown_words(p, ["a", "b"])
    ('unknown option --epoch; did you mean --epochs?', "unknown option --zzz; see 'neuroclass x --help' for its options", "unexpected arguments 'a' 'b'; see 'neuroclass x --help'")
    """
    options = [word.split("=", 1)[0] for word in extras if word.startswith("-") and not NUMBER.fullmatch(word)]
    if options:
        known = [s for action in _actions(parser) for s in action.option_strings]
        close = closest(options[0], known)
        return f"unknown option {options[0]}; " + (f"did you mean {close}?" if close else
                                                    f"see '{parser.prog} --help' for its options")
    words = " ".join(repr(word) for word in extras)
    return f"unexpected argument{'s' if len(extras) > 1 else ''} {words}; see '{parser.prog} --help'"


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """A parser's arguments. argparse keeps them in ``_actions`` and offers no public accessor
    (argcomplete and sphinx-argparse read the same list)."""
    return list(parser._actions)
