"""Helpers shared by the benchmark scripts: plain-text tables and a one-line machine summary."""
from __future__ import annotations

import os
import platform
import sys


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns.

    >>> print(format_table(["a", "bb"], [["1", "2"]]))
    a  bb
    -  --
    1  2
    """
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> str:
    """CPU, core count, Python, torch version and intra-op threads, for the table's header."""
    import torch

    return (f"machine: {cpu_name()}, {os.cpu_count()} logical cores | python {sys.version.split()[0]} | "
            f"torch {torch.__version__} | torch.get_num_threads() = {torch.get_num_threads()}")


def fmt_seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def fmt_percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}%"


def settings_note(overrides: list[str] | None = None, quick: bool = False) -> str:
    """The header's tail: the --set overrides given, and a warning that quick mode is no result."""
    return ((f" | overrides: {' '.join(overrides)}" if overrides else "")
            + (" | QUICK MODE (not a result)" if quick else ""))
