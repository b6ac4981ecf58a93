"""The data-quality parts of the page's Data section: what loading and splitting found
(data_issues.json: files ignored or skipped, labels merged, classes missing from a split, columns
not used as features) and the duplicates between the training and evaluation data (leakage).

Each takes its part of report.json and returns HTML; sections.data places them under the class
counts.

Example::

    ignored_count({"counts": {"ignored": 8}, "ignored_folders": 3})
    # -> '3 folders and 5 files'
"""
from __future__ import annotations

import json

from neuroclass.errors import counted
from neuroclass.evaluation.report.html import esc, example, fmt, key_values, note, table

FILE_LISTS = (("ignored", "ignored (not data)"), ("skipped", "files skipped (unreadable)"),
              ("warnings", "warnings while reading files"))


def ignored_count(issues: dict) -> str:
    """The ignored entries as the loader's warning counts them: "3 folders and 5 files", an ignored
    folder (its path ends with "/") counted once.

    >>> ignored_count({"counts": {"ignored": 8}, "ignored_folders": 3})
    '3 folders and 5 files'
    """
    folders = issues.get("ignored_folders", 0)
    files = issues["counts"]["ignored"] - folders
    said = [counted(n, noun) for n, noun in ((folders, "folder"), (files, "file")) if n]
    return " and ".join(said) or "0 files"


def data_issues(issues: dict | None) -> str:
    """data_issues.json: counts, merged labels, classes missing from a split, and the file lists
    folded (each limited to its first entries; the file holds them all)."""
    body = "<h3>Data issues (data_issues.json)</h3>"
    if not issues or not issues["total"]:
        return body + note("none recorded: no file was ignored or skipped, no label merged, no column "
                           "dropped, and every class is in every split" if issues else
                           "not recorded for this run")
    counts, shown = issues["counts"], issues["shown"]
    body += key_values([(label, ignored_count(issues) if kind == "ignored" else fmt(counts[kind]))
                        for kind, label in FILE_LISTS]
                       + [("labels merged into one class", fmt(counts["merged_labels"])),
                          ("classes missing from a split", fmt(counts["small_classes"])),
                          ("columns not used as features", fmt(counts.get("dropped_columns", 0)))])
    if shown.get("dropped_columns"):
        body += table(["column", "why it is not a feature"],
                      [[c["name"], c["reason"]] for c in shown["dropped_columns"]])
    if shown["merged_labels"]:
        body += table(["class", "read from the values"],
                      [[m["into"], ", ".join(json.dumps(v, ensure_ascii=False) for v in m["values"])]
                       for m in shown["merged_labels"]])
    if shown["small_classes"]:
        body += table(["class", "examples", "missing from", "what was done"],
                      [[c["name"], fmt(c["count"]), ", ".join(c["missing_from"]), c["action"]]
                       for c in shown["small_classes"]], numeric={1})
    for kind, label in FILE_LISTS:
        if not counts[kind]:
            continue
        reasons = "; ".join(f"{reason}: {n:,}" for reason, n in issues["reasons"][kind].items())
        more = counts[kind] - len(shown[kind])
        said = ignored_count(issues) if kind == "ignored" else f"{counts[kind]:,}"
        body += (f"<details><summary>{esc(f'{said} {label} ({reasons})')}</summary>"
                 + table(["file", "reason"], [[f["path"], f["reason"]] for f in shown[kind]])
                 + (note(f"and {more:,} more in data_issues.json") if more > 0 else "") + "</details>")
    for kind in ("merged_labels", "small_classes", "dropped_columns"):
        if counts.get(kind, 0) > len(shown.get(kind, ())):
            body += note(f"{counts[kind] - len(shown[kind]):,} more {kind.replace('_', ' ')} in data_issues.json")
    return body


def leakage(leak: dict, pics: dict) -> str:
    """report.json's data -> leakage (exact and near duplicates between the training and evaluation
    data) as a key-value table, with the closest pairs side by side from ``pics["leakage"]`` (pairs
    of image data URIs, training image first); a note for a check skipped or failed."""
    body = "<h3>Duplicates between training and evaluation data (leakage)</h3>"
    if leak.get("error"):
        return body + note(f"not checked: {leak['error']}")
    if leak.get("skipped"):
        return body + note(leak["skipped"])
    body += key_values([("compared", leak.get("compared", "")), ("exact duplicates", fmt(leak.get("exact"))),
                        ("near duplicates", fmt(leak.get("near"))), ("method", leak.get("method", ""))])
    pairs = pics.get("leakage", [])
    if pairs:
        body += note(f"the {len(pairs)} closest pairs, training image first")
        body += '<div class="gallery">' + "".join(
            example(a, [f"#{i} training {p['train']}"])
            + example(b, [f"#{i} evaluation {p['test']}", f"{p.get('kind', '')} {fmt(p.get('similarity'))}"])
            for i, ((a, b), p) in enumerate(zip(pairs, leak["pairs"]), start=1)) + "</div>"
    return body
