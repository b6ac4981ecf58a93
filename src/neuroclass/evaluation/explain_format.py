"""How explain writes a number, on its page and in the terminal: one helper, so that no value is
shown as "-0.0000" or as a zero that is not one.

>>> [number(v) for v in (0.123456, -0.0, -3e-9, 0.00004123, 2.5e-4, 1234.5, 7, None)]
['0.1235', '0', '-3.00e-09', '4.12e-05', '0.0003', '1234.5000', '7', 'n/a']
"""
from __future__ import annotations

import numpy as np

TINY = 1e-4  # smaller magnitudes are written in scientific notation


def number(value, digits: int = 4) -> str:
    """``value`` as text: a float (or NumPy number) with ``digits`` decimals; zero (also -0.0) as
    "0"; a nonzero value that those decimals would round to zero, or whose magnitude is below TINY,
    in scientific notation with three significant digits ("-3.00e-09"), so that its sign and size
    stay meaningful; an int with thousands separators; a bool as yes / no; None as "n/a"; anything
    else as ``str``.

    >>> number(-0.004, 2), number(0.5, 2), number(12345), number(float("nan"))
    ('-4.00e-03', '0.50', '12,345', 'nan')
    """
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if not isinstance(value, (float, np.floating)):
        return str(value)
    v = float(value)
    if v == 0:
        return "0"  # -0.0 as well
    if not np.isfinite(v):
        return str(v)
    fixed = f"{v:.{digits}f}"
    if abs(v) < TINY or float(fixed) == 0:
        return f"{v:.2e}"
    return fixed
