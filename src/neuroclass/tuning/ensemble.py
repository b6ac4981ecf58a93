"""``build_ensemble``: finished runs in, an ensemble folder out (``neuroclass ensemble``, and
``tune --ensemble K`` with the best K trials).

The members must have trained on the same data and be tested on the same examples: the same
classes, kind, input shape, data content hash and test split. The ensemble's test metrics are then
measured on that shared test split, which no member trained on, so they compare with each member's
own. Stacking members are cross-validation summary folders (``train --cv K``): the stacker is
fitted on their out-of-fold probabilities only, rows that lie outside the test split by
construction (checked here), so it never sees a test label (Wolpert 1992).

The folder is assembled in a hidden partial folder and renamed into place once every file is
written (runs.RunFolder), so a failure leaves nothing behind; every check of the members runs
before that folder is made. Layout: runs/ensemble_file.py.

Example::

    path = build_ensemble(["runs/digits-mlp-20260101-110000", "runs/digits-cnn-20260101-113000"])
    json.loads((path / "metrics.json").read_text())["accuracy"]
    # -> 0.98
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from neuroclass.errors import NeuroclassError, counted
from neuroclass.evaluation.evaluate import own_test_split
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.inference import EnsemblePredictor, load_predictor
from neuroclass.inference.stacking import fit_stacker, stacker_record
from neuroclass.runs import (METHODS, EnsembleMember, EnsembleRecord, RunFolder, environment_record,
                             is_ensemble_folder, read_ensemble, read_oof, run_name, write_ensemble)
from neuroclass.runs.ensemble_file import MEMBERS_DIR, STACKER_FILE, check_weights
from neuroclass.runs.folder import PARTIAL


@dataclass(frozen=True)
class MemberFacts:
    """What members must share, read from a member folder: ``test`` int64 (N_test,) positions of
    its test split in the dataset; ``trained`` int64 positions it trained or validated on."""

    path: Path
    classes: list[str]
    kind: str
    input_shape: list[int]
    data_hash: str | None
    test: np.ndarray
    trained: np.ndarray


COMPARED = (("classes", "classes"), ("kind", "kind"), ("input_shape", "input shape"),
            ("data_hash", "data content hash"))


def member_facts(path: str | Path) -> MemberFacts:
    """The facts of a finished run folder or ensemble folder ``path``; NeuroclassError naming it
    when it is missing, unfinished or incomplete."""
    where = Path(os.path.abspath(path))  # absolute, as ensemble.json's references are made
    if where.name.startswith(PARTIAL):  # checked first: opening it would sweep its checkpoints
        raise NeuroclassError(f"RUN '{path}': an unfinished run (a hidden {PARTIAL}* folder); finish it with "
                              f"'neuroclass train --resume {path}' or pass a finished run folder")
    folder = RunFolder.open(path)  # missing, or no model.json
    if is_ensemble_folder(folder.path):
        record = read_ensemble(folder.path)
        classes, kind, shape = list(record.classes), record.kind, list(record.input_shape)
        data_hash = record.data_hash
    else:
        if not folder.file("model.safetensors").is_file():
            raise NeuroclassError(f"RUN '{path}': no model.safetensors; the run did not finish; train it again")
        meta = folder.meta()
        classes, kind, shape = list(meta["classes"]), meta["kind"], list(meta["input_shape"])
        data_hash = folder.environment().get("data_hash")
    split = folder.split_indices()
    empty = np.zeros(0, dtype=np.int64)
    trained = np.union1d(split.get("train", empty), split.get("val", empty))
    return MemberFacts(where, classes, kind, shape, data_hash, np.sort(split.get("test", empty)),
                       trained)


def check_same_data(members: list[MemberFacts]) -> None:
    """NeuroclassError, one line naming the first two members that differ and in what, unless all
    share classes, kind, input shape, data content hash (where recorded) and test split."""
    first = members[0]
    for other in members[1:]:
        for name, words in COMPARED:
            a, b = getattr(first, name), getattr(other, name)
            if a != b and not (name == "data_hash" and (a is None or b is None)):
                raise NeuroclassError(f"ensemble members differ: {first.path} has {words} {a}, {other.path} {b}; "
                                      "ensemble runs trained on the same data")
        if not np.array_equal(first.test, other.test):
            raise NeuroclassError(
                f"ensemble members differ: {first.path} has a test split of {counted(len(first.test), 'example')}, "
                f"{other.path} another of {counted(len(other.test), 'example')} (another seed or "
                "data.test_fraction); ensemble runs trained on the same data and split")


def check_distinct(runs: list[str | Path]) -> None:
    """NeuroclassError naming the first run folder given twice in ``runs`` (the same folder by
    another path or a link included): a repeated member only weighs that run more, which --weights says.

    >>> check_distinct(["runs/a", "runs/b"])
    """
    seen: dict[str, str | Path] = {}
    for path in runs:
        key = os.path.realpath(path)
        if key in seen:
            also = "" if str(seen[key]) == str(path) else f" (also as '{seen[key]}')"
            raise NeuroclassError(f"RUN '{path}' is given twice{also}; give each run once (to weigh "
                                  "one run more, use --weights, e.g. --weights 2,1)")
        seen[key] = path


def fit_stacking(members: list[MemberFacts]) -> tuple[LogisticRegression, dict]:
    """The stacker fitted on the members' oof.npz (rows matched by dataset index) and its record
    for stacker.json ("fitted_on": the rows and a SHA-256 of their dataset indices).
    NeuroclassError when a member has no oof.npz, the members' rows differ, or a row lies in the
    test split."""
    oofs = [read_oof(m.path) for m in members]
    first = oofs[0]
    for member, oof in zip(members[1:], oofs[1:]):
        if not (np.array_equal(oof.index, first.index) and np.array_equal(oof.label, first.label)):
            raise NeuroclassError(f"stacking: the oof.npz of {members[0].path} and {member.path} cover different "
                                  f"examples ({len(first.index):,} and {len(oof.index):,} rows); stack "
                                  "cross-validations of the same data, split and seed")
    leaked = np.intersect1d(first.index, members[0].test)
    if leaked.size:
        raise NeuroclassError(f"stacking: the oof.npz of {members[0].path} holds "
                              f"{counted(leaked.size, 'example')} of the test split; out-of-fold rows must "
                              "come from the training pool only: run the cross-validation again")
    for member, oof in zip(members, oofs):
        if oof.proba.shape[1] != len(member.classes):
            raise NeuroclassError(f"{member.path}/oof.npz: proba has {oof.proba.shape[1]} columns for "
                                  f"{len(member.classes)} classes; run the cross-validation again")
    stacker = fit_stacker(np.stack([oof.proba for oof in oofs]), first.label)
    fitted_on = {"rows": int(len(first.index)), "source": "oof.npz of each member",
                 "index_sha256": hashlib.sha256(first.index.astype("<i8").tobytes()).hexdigest()}
    return stacker, stacker_record(stacker, fitted_on)


def build_ensemble(runs: list[str | Path], method: str = "mean", weights: list[float] | None = None,
                   copy: bool = False, out: str | Path | None = None, command: str = "",
                   device: str = "auto", name: str | None = None) -> Path:
    """Write an ensemble folder of the finished run (or ensemble) folders ``runs`` and return its path.

    ``method``: "mean", "vote" or "stacking"; ``weights``: one number >= 0 per member (default all
    1; not for stacking, which learns its own); ``copy``: copy the members into the folder (under
    members/) instead of referring to them; ``out``: the folder to put it in (default: the first
    member's parent, beside the members); ``command``: recorded in environment.json; ``name``: the
    folder's name (default ``<data>-ensemble-<method>-<time>``).

    Raises NeuroclassError, with nothing written, for no member, an unknown method, bad weights,
    a run given twice, a member that is not a finished run folder, members that differ in classes, kind, input shape,
    data or test split, and stacking members without matching oof.npz.

    Example::

        build_ensemble(["runs/a", "runs/b"], method="vote", weights=[2, 1], out="runs")
        # -> PosixPath('runs/digits-ensemble-vote-20260101-120000')
    """
    if not runs:
        raise NeuroclassError("an ensemble needs at least one member run (RUN...)")
    if method not in METHODS:
        raise NeuroclassError(f"--method must be one of {', '.join(METHODS)}. Got {method!r} instead.")
    if method == "stacking" and weights is not None:
        raise NeuroclassError("--weights applies to mean and vote; stacking learns how to weigh its members")
    weights = check_weights(weights if weights is not None else [1.0] * len(runs), len(runs))
    check_distinct(runs)
    facts = [member_facts(path) for path in runs]
    check_same_data(facts)
    stacker, stacker_json = fit_stacking(facts) if method == "stacking" else (None, None)
    predictors = [load_predictor(f.path, device) for f in facts]
    ensemble = EnsemblePredictor(predictors, weights, method, predictors[0].meta, stacker)
    first = RunFolder.open(facts[0].path)
    test = own_test_split(first)
    metrics = classification_metrics(test.y.numpy(), ensemble.predict_proba_tensor(test.x), ensemble.classes)
    built = _Built(facts, ensemble, stacker_json, metrics, first)
    run = RunFolder.create(out if out is not None else facts[0].path.parent,
                           name or run_name(first.config().data.source, f"ensemble-{method}"))
    try:
        _write_folder(run, built, copy, command)
        return run.commit()
    except BaseException:
        run.discard()
        raise


@dataclass
class _Built:
    """An ensemble checked and measured, ready to be written: its members' facts, the predictor,
    stacker.json's content (None but for stacking), the test metrics and the first member's folder."""

    facts: list[MemberFacts]
    ensemble: EnsemblePredictor
    stacker_json: dict | None
    metrics: dict
    first: RunFolder


def _write_folder(run: RunFolder, built: _Built, copy: bool, command: str) -> None:
    """Every file of the ensemble folder into the partial folder ``run`` (members copied with ``copy``)."""
    facts, ensemble, first = built.facts, built.ensemble, built.first
    members = [_place_member(f.path, w, copy, run) for f, w in zip(facts, ensemble.weights)]
    record = EnsembleRecord(ensemble.method, tuple(members), tuple(facts[0].classes), facts[0].kind,
                            tuple(facts[0].input_shape), facts[0].data_hash,
                            STACKER_FILE if built.stacker_json is not None else None)
    write_ensemble(run.path, record, final=run.final)
    if built.stacker_json is not None:
        run.write_json(STACKER_FILE, built.stacker_json)
    cfg = first.config()
    run.write_config(cfg)
    trained = np.setdiff1d(np.unique(np.concatenate([f.trained for f in facts])), facts[0].test)
    run.write_split({"train": trained, "test": facts[0].test},
                    {**_split_method(first), "ensemble": "train: every example a member trained or "
                                                          "validated on; test: the members' shared test split"})
    run.write_data_issues(first.read_data_issues())
    run.write_json("environment.json", environment_record(ensemble.device, torch.get_num_threads(),
                                                          cfg.train.seed, facts[0].data_hash or "", command))
    run.write_json("model.json", ensemble.meta)
    run.write_json("metrics.json", built.metrics)


def _split_method(run: RunFolder) -> dict:
    """How the first member's split was made (split.json without its sizes)."""
    return {k: v for k, v in run.split_record().items() if k != "sizes"}


def _place_member(path: Path, weight: float, copy: bool, run: RunFolder) -> EnsembleMember:
    """The member as ensemble.json records it: by reference, or copied under members/ of the
    partial folder (recorded by its place in the final folder)."""
    if not copy:
        return EnsembleMember(path, weight, False)
    (run.path / MEMBERS_DIR).mkdir(exist_ok=True)
    name, suffix = path.name, 1
    while (run.path / MEMBERS_DIR / name).exists():  # two members of the same name from two folders
        suffix += 1
        name = f"{path.name}-{suffix}"
    target = run.path / MEMBERS_DIR / name
    shutil.copytree(path, target, ignore=shutil.ignore_patterns(".lock", "checkpoint"))
    if is_ensemble_folder(target):
        _rebase_copied_ensemble(path, target, run.final / MEMBERS_DIR / name)
    return EnsembleMember(run.final / MEMBERS_DIR / name, weight, True)


def _rebase_copied_ensemble(source: Path, target: Path, final: Path) -> None:
    """A copied member that is an ensemble keeps its own members: those inside it moved with it
    (relative paths, unchanged), those outside it stay where they are (named by absolute path in
    the copy's ensemble.json)."""
    record = read_ensemble(source)
    if all(m.path.is_relative_to(source) for m in record.members):
        return
    members = tuple(replace(m, path=final / m.path.relative_to(source)) if m.path.is_relative_to(source)
                    else m for m in record.members)
    write_ensemble(target, replace(record, members=members), final=final)

def ensemble_summary(path: str | Path) -> str:
    """One line about a built ensemble folder for the terminal: its method, members and test metrics.

    Example::

        ensemble_summary("runs/digits-ensemble-mean-20260101-120000")
        # -> 'mean of 2 runs: test accuracy 0.9812  macro F1 0.9810'
    """
    folder = RunFolder.open(path)
    record = read_ensemble(folder.path)
    metrics = folder.metrics()
    return (f"{record.method} of {counted(len(record.members), 'run')}: test accuracy {metrics['accuracy']:.4f}  "
            f"macro F1 {metrics['macro_f1']:.4f}")

