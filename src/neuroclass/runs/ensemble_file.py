"""ensemble.json and oof.npz: the files that make a folder an ensemble of runs.

An ensemble folder is read like a run folder (config.yaml, environment.json, split.json/.npz,
model.json with ``"ensemble": true``, metrics.json, report.html) plus:

- ``ensemble.json``: the method ("mean", "vote" or "stacking"), the members (each a path relative
  to the ensemble folder when it lies inside it or under its parent, else absolute; a weight; whether it
  was copied into the folder), and the classes, kind, input shape and data content hash that every
  member shares; "stacker" names the stacker's JSON file for the method "stacking".
- ``oof.npz`` (a k-fold cross-validation summary folder only): the out-of-fold probabilities of
  every training example, ``index`` int64 (N,) positions in the loaded dataset, ``fold`` int64 (N,)
  1..K, ``label`` int64 (N,), ``proba`` float32 (N, classes).

A member may itself be an ensemble folder (a cross-validation summary, whose fold runs lie inside
it under folds/). Nothing here loads a model: inference/ensemble.py does.

Example::

    record = read_ensemble("runs/digits-ensemble-mean-20260101-120000")
    [m.path.name for m in record.members], record.method
    # -> (['digits-mlp-20260101-110000', 'digits-cnn-20260101-113000'], 'mean')
"""
from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroclass.errors import NeuroclassError
from neuroclass.io import write_bytes_atomic, write_text_atomic

ENSEMBLE_FILE = "ensemble.json"
STACKER_FILE = "stacker.json"
OOF_FILE = "oof.npz"
ENSEMBLE_FORMAT = 1
METHODS = ("mean", "vote", "stacking")
MEMBERS_DIR = "members"  # where --copy puts the members, inside the ensemble folder


@dataclass(frozen=True)
class EnsembleMember:
    """One member: ``path`` absolute, ``weight`` >= 0, ``copied`` True when it lies in the folder."""

    path: Path
    weight: float = 1.0
    copied: bool = False


@dataclass(frozen=True)
class EnsembleRecord:
    """ensemble.json's content, member paths resolved to absolute ones."""

    method: str
    members: tuple[EnsembleMember, ...]
    classes: tuple[str, ...]
    kind: str
    input_shape: tuple[int, ...]
    data_hash: str | None
    stacker: str | None = None  # the stacker's file name in the folder (method "stacking")

    def to_json(self, folder: Path) -> dict:
        """The JSON of ensemble.json for an ensemble folder that will live at ``folder``."""
        out = {"format": ENSEMBLE_FORMAT, "method": self.method,
               "members": [{"path": member_reference(m.path, folder), "weight": float(m.weight),
                            "copied": bool(m.copied)} for m in self.members],
               "classes": list(self.classes), "kind": self.kind, "input_shape": list(self.input_shape),
               "data_hash": self.data_hash}
        if self.stacker:
            out["stacker"] = self.stacker
        return out


def member_reference(member: Path, folder: Path) -> str:
    """How ensemble.json names ``member`` for an ensemble at ``folder``: relative when the member
    lies in the tree that holds the folder (inside the folder, or anywhere under its parent: a run
    beside it, a study's trials/ beside the study's ensemble), so that moving or copying that tree
    keeps the ensemble whole; absolute otherwise, and when that parent is the filesystem root.

    >>> member_reference(Path("/r/a"), Path("/r/ens")), member_reference(Path("/r/ens/members/a"), Path("/r/ens"))
    ('../a', 'members/a')
    >>> member_reference(Path("/r/study/trials/trial-0002"), Path("/r/study/ensemble-top2"))
    '../trials/trial-0002'
    >>> member_reference(Path("/x/a"), Path("/r/ens"))
    '/x/a'
    """
    member, folder = Path(os.path.abspath(member)), Path(os.path.abspath(folder))
    tree = folder.parent
    if member.is_relative_to(folder) or (tree != Path(tree.anchor) and member.is_relative_to(tree)):
        return Path(os.path.relpath(member, folder)).as_posix()
    return str(member)


def is_ensemble_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding ensemble.json (an ensemble or a cross-validation summary)."""
    return (Path(path) / ENSEMBLE_FILE).is_file()


def read_ensemble(folder: str | Path) -> EnsembleRecord:
    """ensemble.json of ``folder``, member paths resolved against the folder. Raises
    NeuroclassError naming the file when it is missing, not JSON, of another format, or lacks a field."""
    folder = Path(folder)
    path = folder / ENSEMBLE_FILE
    if not path.is_file():
        raise NeuroclassError(f"{folder}: no {ENSEMBLE_FILE}; pass an ensemble folder made by 'neuroclass ensemble'")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise NeuroclassError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != ENSEMBLE_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise NeuroclassError(f"{path}: unsupported format {found!r}; this neuroclass reads format {ENSEMBLE_FORMAT}")
    if raw.get("method") not in METHODS:
        raise NeuroclassError(f"{path}: unknown method {raw.get('method')!r}; one of {', '.join(METHODS)}")
    try:
        members = tuple(EnsembleMember(_resolve(folder, m["path"]), float(m.get("weight", 1.0)),
                                       bool(m.get("copied", False))) for m in raw["members"])
        record = EnsembleRecord(raw["method"], members, tuple(raw["classes"]), raw["kind"],
                                tuple(int(v) for v in raw["input_shape"]), raw.get("data_hash"),
                                raw.get("stacker"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NeuroclassError(f"{path}: damaged ({type(exc).__name__}: {exc}); build the ensemble again "
                              "with 'neuroclass ensemble'") from None
    if not members:
        raise NeuroclassError(f"{path}: no members; build the ensemble again with 'neuroclass ensemble'")
    if record.method == "stacking" and not record.stacker:
        raise NeuroclassError(f"{path}: method 'stacking' without a stacker file; build it again")
    return record


def _resolve(folder: Path, reference: str) -> Path:
    path = Path(reference)
    return Path(os.path.normpath(path if path.is_absolute() else Path(os.path.abspath(folder)) / path))


def write_ensemble(folder: str | Path, record: EnsembleRecord, final: str | Path | None = None) -> None:
    """Write ensemble.json into ``folder`` atomically, members named as seen from ``final`` (the
    folder's name once renamed into place; default ``folder``)."""
    folder = Path(folder)
    write_text_atomic(folder / ENSEMBLE_FILE, json.dumps(record.to_json(Path(final or folder)), indent=2))


@dataclass(frozen=True)
class OutOfFold:
    """oof.npz: each training example's probabilities from the fold model that did not train on it,
    rows sorted by ``index``. ``index``, ``fold``, ``label``: int64 (N,); ``proba``: float32 (N, K)."""

    index: np.ndarray
    fold: np.ndarray
    label: np.ndarray
    proba: np.ndarray


def read_oof(folder: str | Path) -> OutOfFold:
    """oof.npz of a cross-validation summary folder, rows sorted by dataset index. Raises
    NeuroclassError naming the file when it is missing, unreadable or inconsistent (lengths,
    repeated indices, rows not summing to 1)."""
    path = Path(folder) / OOF_FILE
    if not path.is_file():
        raise NeuroclassError(f"{folder}: no {OOF_FILE}; stacking fits on out-of-fold probabilities: pass "
                              "cross-validation summary folders made by 'neuroclass train --cv K'")
    try:
        with np.load(path, allow_pickle=False) as f:
            index, fold, label = (f[k].astype(np.int64) for k in ("index", "fold", "label"))
            proba = f["proba"].astype(np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise NeuroclassError(f"{path}: unreadable ({exc}); run the cross-validation again") from None
    n = len(index)
    if proba.ndim != 2 or proba.shape[0] != n or len(fold) != n or len(label) != n:
        raise NeuroclassError(f"{path}: index, fold, label and proba differ in length "
                              f"({n}, {len(fold)}, {len(label)}, {proba.shape}); run the cross-validation again")
    if len(np.unique(index)) != n:
        raise NeuroclassError(f"{path}: an example appears twice in index; run the cross-validation again")
    if n and not np.allclose(proba.sum(axis=1), 1.0, atol=1e-3):
        raise NeuroclassError(f"{path}: proba rows do not sum to 1; run the cross-validation again")
    order = np.argsort(index, kind="stable")
    return OutOfFold(index[order], fold[order], label[order], proba[order])


def write_oof(folder: str | Path, oof: OutOfFold) -> Path:
    """Write oof.npz into ``folder`` atomically (compressed, no pickled objects); returns its path."""
    buf = io.BytesIO()
    np.savez_compressed(buf, index=np.asarray(oof.index, np.int64), fold=np.asarray(oof.fold, np.int64),
                        label=np.asarray(oof.label, np.int64), proba=np.asarray(oof.proba, np.float32))
    path = Path(folder) / OOF_FILE
    write_bytes_atomic(path, buf.getvalue())
    return path


def check_weights(weights: list[float] | tuple[float, ...], members: int) -> list[float]:
    """``weights`` as floats when there is one per member, each finite and >= 0, and one > 0;
    NeuroclassError naming --weights otherwise.

    >>> check_weights([1, 2], 2)
    [1.0, 2.0]
    """
    weights = [float(w) for w in weights]
    if len(weights) != members:
        raise NeuroclassError(f"--weights has {len(weights)} number{'' if len(weights) == 1 else 's'} for "
                              f"{members} member{'' if members == 1 else 's'}; give one weight per member")
    bad = [w for w in weights if not math.isfinite(w) or w < 0]
    if bad:
        raise NeuroclassError(f"--weights must be finite and >= 0. Got {bad[0]:g} instead.")
    if not any(w > 0 for w in weights):
        raise NeuroclassError("--weights: at least one weight must be > 0")
    return weights
