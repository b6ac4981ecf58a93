"""The record of what loading found wrong with the data, kept with every run (data_issues.json).

A Dataset carries one ``DataIssues``: files that were not data (operating-system or tool metadata,
ignored), files that were data but could not be read (skipped), warnings raised while reading a
file (each naming it), label values merged into one class, and classes too small to appear in every
split. The loader and the split fill it; the run folder writes it and the report shows it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class FileIssue:
    """One file and what was done about it: ``path`` as found, ``reason`` one line."""

    path: str
    reason: str


@dataclass(frozen=True)
class MergedLabel:
    """Raw label values read as one class ``into`` (e.g. "yes", "yes " and " yes")."""

    into: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class SmallClass:
    """A class with too few examples to appear in every split: ``count`` examples in all,
    ``missing_from`` the splits that have none, ``action`` what was done (one line)."""

    name: str
    count: int
    missing_from: tuple[str, ...]
    action: str


@dataclass(frozen=True)
class DroppedColumn:
    """A table column not used as a feature: ``name`` as in the file, ``reason`` one line."""

    name: str
    reason: str


@dataclass
class DataIssues:
    """Everything loading and splitting noticed; empty lists when the data was clean.

    >>> issues = DataIssues()
    >>> issues.ignored.append(FileIssue("cats/.DS_Store", "operating-system metadata"))
    >>> DataIssues.from_json(issues.to_json()) == issues
    True
    """

    ignored: list[FileIssue] = field(default_factory=list)
    skipped: list[FileIssue] = field(default_factory=list)
    warnings: list[FileIssue] = field(default_factory=list)
    merged_labels: list[MergedLabel] = field(default_factory=list)
    small_classes: list[SmallClass] = field(default_factory=list)
    dropped_columns: list[DroppedColumn] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(self._lists().values())

    def to_json(self) -> dict:
        """A JSON-ready dict: lists of plain dicts, tuples as lists."""
        return {name: [asdict(item) for item in items] for name, items in self._lists().items()}

    @classmethod
    def from_json(cls, record: dict) -> "DataIssues":
        """The inverse of ``to_json``; missing keys read as empty lists (older run folders)."""
        kinds = {"ignored": FileIssue, "skipped": FileIssue, "warnings": FileIssue,
                 "merged_labels": MergedLabel, "small_classes": SmallClass,
                 "dropped_columns": DroppedColumn}
        out = cls()
        for name, kind in kinds.items():
            items = getattr(out, name)
            for item in record.get(name, []):
                items.append(kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in item.items()}))
        return out

    def _lists(self) -> dict[str, list]:
        return {"ignored": self.ignored, "skipped": self.skipped, "warnings": self.warnings,
                "merged_labels": self.merged_labels, "small_classes": self.small_classes,
                "dropped_columns": self.dropped_columns}
