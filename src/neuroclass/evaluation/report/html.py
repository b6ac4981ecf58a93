"""HTML building blocks and the page: one self-contained file, CSS inline, no scripts, no network.

Every piece of text goes through ``esc`` (html.escape); images are data URIs, so the page opens
offline, prints (see the @media print rules) and can be mailed as a single file.

>>> table(["class", "recall"], [["<cat>", fmt(0.5)]])
'<table><thead><tr><th>class</th><th>recall</th></tr></thead><tbody><tr><td>&lt;cat&gt;</td><td>0.5000</td></tr></tbody></table>'
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from neuroclass.errors import NeuroclassError
from neuroclass.io import write_text_atomic

CSS = """
:root { --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; --bg: #f9fafb; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main { max-width: 1100px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 6px; padding-top: 6px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: var(--muted); margin: 0 0 14px; }
nav { display: flex; flex-wrap: wrap; gap: 6px 14px; padding: 10px 0 14px; border-bottom: 1px solid var(--line); }
nav a { color: var(--accent); text-decoration: none; font-size: 13px; }
section { padding: 22px 0 18px; border-bottom: 1px solid var(--line); }
p.explain { color: #374151; background: var(--bg); border-left: 3px solid var(--accent);
            padding: 6px 10px; margin: 4px 0 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin: 8px 0 14px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .value { font-size: 20px; font-weight: 600; }
.card .label { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
img.chart { max-width: 100%; height: auto; display: block; margin: 6px 0 10px; }
img.px { image-rendering: pixelated; width: 56px; height: 56px; object-fit: contain;
         background: #000; border-radius: 3px; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
figure.example { margin: 0; width: 112px; font-size: 11px; }
figure.example img.px { width: 112px; height: 112px; }
figure.example figcaption { margin-top: 3px; line-height: 1.3; }
.samples td { padding: 2px 3px; border: 0; }
.samples th { background: none; border: 0; padding-right: 10px; white-space: nowrap; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px;
      overflow-x: auto; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
pre.config { column-width: 240px; column-gap: 24px; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 11px; font-weight: 600;
         color: #fff; background: var(--muted); }
.badge.error, .badge.critical { background: #b91c1c; } .badge.warning { background: #b45309; }
.badge.info { background: #2563eb; } .badge.ok { background: #047857; }
.note { color: var(--muted); font-size: 12px; }
footer { max-width: 1100px; margin: 0 auto; padding: 14px 24px 30px; color: var(--muted); font-size: 12px; }
@media print {
  nav { display: none; }
  body { font-size: 11px; }
  header, main, footer { max-width: none; padding: 0 8px; }
  section { break-inside: auto; page-break-inside: auto; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  img, table, figure, pre, .cards { break-inside: avoid; page-break-inside: avoid; }
  p.explain { background: none; }
}
"""


def esc(value) -> str:
    """Text safe to place in HTML (content or quoted attribute)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value, digits: int = 4) -> str:
    """A number for a table: ints with thousands separators, floats to ``digits``, None as "n/a".

    >>> fmt(60000), fmt(0.123456), fmt(None)
    ('60,000', '0.1235', 'n/a')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.{digits}g}"
    return str(value)


def pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def table(headers: list[str], rows: list[list], numeric: set[int] | None = None) -> str:
    """A table; cells are escaped; columns in ``numeric`` are right-aligned."""
    numeric = numeric or set()

    def cell(tag: str, i: int, value) -> str:
        cls = ' class="num"' if i in numeric else ""
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_values(pairs: list[tuple[str, object]]) -> str:
    """A two-column table of names and values."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f"<table><tbody>{rows}</tbody></table>"


def chart(uri: str | None, alt: str) -> str:
    return f'<img class="chart" src="{esc(uri)}" alt="{esc(alt)}">' if uri else ""


def cards(items: list[tuple[str, str]]) -> str:
    """Headline numbers: (value, label) pairs as cards."""
    inner = "".join(f'<div class="card"><div class="value">{esc(v)}</div><div class="label">{esc(k)}</div></div>'
                    for v, k in items)
    return f'<div class="cards">{inner}</div>'


def example(uri: str, lines: list[str]) -> str:
    """One example image with caption lines."""
    caption = "<br>".join(esc(line) for line in lines)
    return (f'<figure class="example"><img class="px" src="{esc(uri)}" alt="{esc(lines[0] if lines else "")}">'
            f"<figcaption>{caption}</figcaption></figure>")


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def section(number: int, anchor: str, title: str, explain: str, body: str) -> str:
    return (f'<section id="{esc(anchor)}"><h2>{number}. {esc(title)}</h2>'
            f'<p class="explain">{esc(explain)}</p>{body}</section>')


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]], footer: str) -> str:
    """The whole document; ``sections`` are (anchor, title, html) in order."""
    nav = "".join(f'<a href="#{esc(anchor)}">{i}. {esc(name)}</a>'
                  for i, (anchor, name, _) in enumerate(sections, start=1))
    body = "".join(content for _, _, content in sections)
    # rel=icon with an empty data URI: the browser would otherwise ask for /favicon.ico
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><link rel=\"icon\" href=\"data:,\"><style>{CSS}</style></head>"
            f"<body><header><h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p>"
            f"<nav>{nav}</nav></header><main>{body}</main>"
            f"<footer>{esc(footer)}</footer></body></html>\n")


def save_page(html_path: Path, report: dict, document: str) -> Path:
    """Write ``document`` to ``html_path`` and ``report`` (every number on the page) as JSON beside
    it, each atomically; returns ``html_path``. Raises NeuroclassError naming the path when it
    cannot be written."""
    try:
        write_text_atomic(html_path.with_suffix(".json"), json.dumps(report, indent=2, allow_nan=False))
        write_text_atomic(html_path, document)
    except OSError as exc:
        raise NeuroclassError(f"{html_path}: cannot write the report ({exc.strerror or exc}); pass "
                              "--out with a folder you can write to") from None
    return html_path
