"""Text padded to a width on the terminal, where East Asian wide and full-width characters
(CJK ideographs, kana, full-width letters) take two columns and combining marks none."""
from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: 2 for each wide (W) or full-width (F) character, 0 for a
    combining mark, 1 for any other.

    >>> display_width("cat"), display_width("猫"), display_width("cafe\\u0301")
    (3, 2, 4)
    """
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` with spaces after it (before it when ``right``) to fill ``width`` terminal columns;
    as it is when already wider.

    >>> pad("猫", 4) + "|", pad("ab", 4, right=True)
    ('猫  |', '  ab')
    """
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill
