"""Stratified k-fold cross-validation: K ordinary runs, one per fold, and a summary folder.

k-fold cross-validation (Kohavi 1995, "A study of cross-validation and bootstrap for accuracy
estimation and model selection", IJCAI) estimates how well a configuration trains by training it K
times, each time validating on another K-th of the data and training on the rest. Here the test
split stays the one an ordinary run makes (same seed, same examples), and the rest -- the training
pool -- is dealt into K folds by scikit-learn's ``StratifiedKFold(shuffle=True,
random_state=train.seed)`` (data/split.py), so that every fold keeps the classes' proportions.

``cross_validate`` trains the K fold runs through ``neuroclass.pipeline.train``: each is an ordinary
run folder, ``<summary>/folds/fold-<i>``, whose config.yaml (with ``data.folds`` and ``data.fold``)
replays it. The summary folder is an ensemble run folder (method "mean" over the fold models) plus
the cross-validation's own record:

- ``oof.npz``: the out-of-fold probabilities, each pool example once, from the model that did not
  train on it (its fold's Predictor: the inference policy ``predict`` applies);
- ``cv.json``: mean and standard deviation of every validation metric across the folds, the
  metrics of the out-of-fold predictions, and the fold ensemble's test metrics;
- ``metrics.json``: the fold ensemble's test metrics (the mean of the fold models' probabilities).

The summary folder is assembled in a hidden partial folder and renamed into place once complete
(runs.RunFolder), so a failed or interrupted fold leaves nothing behind: a torch fold's checkpoint
goes, and so does a glassbox fold, which a stop leaves finished with its weights so far
(``as_discarded``).

Example::

    result = cross_validate(load_config(overrides=["data.source=digits", "model.name=mlp"]), k=5)
    result.summary["metrics"]["accuracy"]["mean"], mean_validation_metric(result, "macro_f1")
    # -> (0.96..., 0.96...)
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from neuroclass import pipeline
from neuroclass.config import Config, TrainConfig
from neuroclass.device import use_threads
from neuroclass.errors import NeuroclassError, RunInterrupted
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.inference import Predictor
from neuroclass.io import write_bytes_atomic, write_text_atomic
from neuroclass.registry import did_you_mean
from neuroclass.runs import RunData, RunFolder, run_name
from neuroclass.runs.folder import PARTIAL
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.tuning.cv_budget import FoldBudgets

# the validation metrics a search can optimise, and which way is better
METRICS = {"accuracy": "maximize", "balanced_accuracy": "maximize", "macro_f1": "maximize",
           "log_loss": "minimize"}
# every scalar of evaluation.metrics.classification_metrics that cv.json summarises (top-k added)
SUMMARISED = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc_ovr_macro")
FOLDS_DIR = "folds"


@dataclass
class FoldRun:
    """One finished fold: ``fold`` (1..K), its run folder ``path`` (where it lies once the summary
    folder is in place), its validation metrics (classification_metrics of its Predictor's
    probabilities on its validation fold), its own test metrics (metrics.json), its timing.json
    values, the time budget it was given (seconds; None without a budget), and ``overhead``: the
    seconds it took outside that budget (writing its run folder, the out-of-fold predictions)."""

    fold: int
    path: Path
    val_metrics: dict
    test_metrics: dict
    timing: dict
    budget: float | None
    overhead: float = 0.0


@dataclass
class CVResult:
    """A finished cross-validation: the summary folder ``path``, the folds, and ``summary``
    (cv.json's content)."""

    path: Path
    folds: list[FoldRun]
    summary: dict

    @property
    def metrics(self) -> dict:
        """The fold ensemble's test metrics (metrics.json)."""
        return self.summary["fold_ensemble_test_metrics"]


@dataclass
class _Collected:
    """What the folds have given so far: the run's own data (loaded once, from fold 1's record),
    the out-of-fold rows, each fold's test probabilities, and the seconds loading the run's data
    took (once, after fold 1: not part of any later fold's overhead)."""

    data: RunData | None = None
    first: RunFolder | None = None
    index: list[np.ndarray] = field(default_factory=list)
    fold: list[np.ndarray] = field(default_factory=list)
    proba: list[np.ndarray] = field(default_factory=list)
    test_proba: list[np.ndarray] = field(default_factory=list)
    runs: list[FoldRun] = field(default_factory=list)
    load_seconds: float = 0.0


def check_folds(k: int) -> int:
    """``k`` when it is a whole number of folds >= 2; NeuroclassError otherwise.

    >>> check_folds(5)
    5
    >>> check_folds(1)
    Traceback (most recent call last):
    neuroclass.errors.NeuroclassError: The number of folds (--cv) must be a whole number >= 2. Got 1 instead.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise NeuroclassError(f"The number of folds (--cv) must be a whole number >= 2. Got {k!r} instead.")
    return int(k)


def cross_validate(cfg: Config, k: int, callbacks: list[Callback] | tuple = (), command: str = "",
                   report: bool = False, stop: StopRequest | None = None,
                   on_fold: Callable[[FoldRun], None] | None = None,
                   clock: Callable[[], float] = time.perf_counter, started: float | None = None,
                   name: str | None = None) -> CVResult:
    """Train ``cfg`` on each of ``k`` stratified folds and write the summary folder into
    ``cfg.out``. Each fold is ``pipeline.train`` with ``data.folds=k, data.fold=i`` (its report
    only when ``report``); folds 2..k train fold 1's recorded config (what a time budget chose for
    it included), so that every fold trains the same configuration. ``callbacks`` and ``stop`` go
    to every fold's training. With ``cfg.train.time_budget``, counted by ``clock`` from
    ``started`` (default: now), each fold is given what is left divided by the folds left, less
    the overhead measured on the fold before (cv_budget.FoldBudgets), recomputed before each fold
    (FoldRun.budget, FoldRun.overhead record it). ``on_fold(FoldRun)`` is called as each fold
    finishes (the CLI prints a line; an exception it raises ends the cross-validation);
    ``name``: the summary folder's name in cfg.out (default ``<data>-<model>-cv<K>-<timestamp>``).

    Returns a CVResult. Raises NeuroclassError for ``k`` < 2, a ``data.folds`` other than ``k``,
    more folds than the smallest class of the pool has examples (before anything is written),
    a budget that cannot give the folds left a useful share (FoldBudgets.next_budget), and
    whatever a run raises; RunInterrupted when ``stop`` is requested. On any failure the summary
    folder, fold runs included, is removed.
    """
    k = check_folds(k)
    if cfg.data.folds not in (None, k):
        raise NeuroclassError(f"--cv {k} and data.folds={cfg.data.folds} disagree; drop data.folds "
                              "(--cv sets it for each fold)")
    start = clock() if started is None else started
    budgets = FoldBudgets(cfg.train.time_budget, k, clock, start) if cfg.train.time_budget else None
    summary = RunFolder.create(cfg.out, name or _summary_name(cfg, k))
    final = summary.final
    try:
        got, base = _Collected(), cfg
        for i in range(1, k + 1):
            budget = budgets.next_budget(i) if budgets is not None else None
            fold_cfg = replace(base, data=replace(base.data, folds=k, fold=i),
                               train=replace(base.train, time_budget=budget))
            began = clock()
            result = pipeline.train(fold_cfg, callbacks=callbacks, command=command, report=report, stop=stop,
                                    clock=clock, started=began, out=summary.path / FOLDS_DIR, name=f"fold-{i}")
            trained = clock()
            _collect(got, RunFolder.open(result.path), i, budget, final / FOLDS_DIR / f"fold-{i}",
                     cfg.train, clock)
            got.runs[-1].overhead = fold_overhead(trained - began, result.timing, clock() - trained,
                                                  got.load_seconds if i == 1 else 0.0)
            if budgets is not None:
                budgets.measured(got.runs[-1].overhead)
            # the later folds train fold 1's config as it recorded it, with what its time budget
            # chose (model size, augmentation, a photo folder's side): the same configuration K times
            base = got.first.config()
            if on_fold is not None:
                on_fold(got.runs[-1])
        record = _write_summary(summary, got, k, command)
        path = summary.commit()
    except BaseException as exc:
        summary.discard()
        if (stopped := as_discarded(exc)) is not exc:
            raise stopped from None
        raise
    return CVResult(path, got.runs, record)


def fold_overhead(train_call: float, timing: dict, collect: float, load: float = 0.0) -> float:
    """Seconds a fold took outside its own time budget: the part of its ``train_call`` (seconds
    of pipeline.train) after the run's timed part (``timing["total_seconds"]``: writing the run
    folder), plus ``collect`` (seconds of the out-of-fold predictions after it), less ``load``
    (loading the run's data, done once after fold 1: not a cost of every fold); >= 0.

    >>> fold_overhead(31.0, {"total_seconds": 30.0}, 4.0, load=2.0)
    3.0
    """
    return max(0.0, train_call - timing.get("total_seconds", 0.0) + collect - load)


def as_discarded(exc: BaseException) -> BaseException:
    """``exc`` as said of a run whose folder is then discarded (a fold, a search's trial): a
    RunInterrupted for a run that the stop left finished (the glassbox network's, which keeps no
    checkpoint to resume from) becomes, as a torch run's, one for its partial folder, its detail
    the stop's own words (before the first ';') without what the run did with its weights. Other
    exceptions as they are.

    >>> as_discarded(RunInterrupted(Path("out/fold-1"), "stopped at epoch 2; finished with its weights", True))
    RunInterrupted('stopped at epoch 2; the run can be resumed from out/.partial-fold-1')
    """
    if not (isinstance(exc, RunInterrupted) and exc.finished):
        return exc
    return RunInterrupted(exc.path.with_name(PARTIAL + exc.path.name), exc.detail.split(";")[0])


def mean_validation_metric(result: CVResult, name: str) -> float:
    """The mean over the folds of the validation metric ``name`` (one of METRICS: accuracy,
    balanced_accuracy, macro_f1, log_loss; METRICS says which way is better): what a search
    compares configurations by. Raises NeuroclassError for another name.

    >>> r = CVResult(Path("x"), [], {"metrics": {"accuracy": {"mean": 0.9, "std": 0.01, "per_fold": []}}})
    >>> mean_validation_metric(r, "accuracy")
    0.9
    """
    if name not in METRICS:
        raise NeuroclassError(f"cross-validation metric '{name}' is not one of {', '.join(METRICS)}."
                              + did_you_mean(name, list(METRICS)))
    return float(result.summary["metrics"][name]["mean"])


def summarize(per_fold: list[dict]) -> dict:
    """{metric: {"mean", "std", "per_fold"}} over the folds' classification_metrics dicts: every
    scalar metric (SUMMARISED, and "top_<k>_accuracy"), mean and population standard deviation
    (numpy's, ddof=0, as scikit-learn's GridSearchCV reports std_test_score); None where a fold's
    value is None (a ROC-AUC undefined on a fold).

    >>> summarize([{"accuracy": 0.8, "top_k_accuracy": {}}, {"accuracy": 1.0, "top_k_accuracy": {}}])
    {'accuracy': {'mean': 0.9, 'std': 0.09999999999999998, 'per_fold': [0.8, 1.0]}}
    """
    out = {}
    for name in _scalar_names(per_fold[0]):
        values = [_scalar(m, name) for m in per_fold]
        known = None not in values
        out[name] = {"mean": float(np.mean(values)) if known else None,
                     "std": float(np.std(values)) if known else None, "per_fold": values}
    return out


def _scalar_names(metrics: dict) -> list[str]:
    return [n for n in SUMMARISED if n in metrics] + [f"top_{k}_accuracy" for k in metrics["top_k_accuracy"]]


def _scalar(metrics: dict, name: str) -> float | None:
    if name.startswith("top_") and name.endswith("_accuracy"):
        return metrics["top_k_accuracy"][name[len("top_"):-len("_accuracy")]]
    return metrics[name]


def _summary_name(cfg: Config, k: int) -> str:
    """``<data>-<model>-cv<k>-<timestamp>`` (``<data>-cv<k>-...`` while the model is "auto")."""
    model = f"{cfg.model.name}-cv{k}" if cfg.model.name != "auto" else f"cv{k}"
    return run_name(cfg.data.source, model)


def _collect(got: _Collected, run: RunFolder, i: int, budget: float | None, final: Path,
             train_cfg: TrainConfig, clock: Callable[[], float]) -> None:
    """Fold ``i``'s finished ``run``: its Predictor's probabilities on its validation fold (the
    out-of-fold rows) and on the shared test split, and its FoldRun (overhead 0, measured by the
    caller). Loading the run's data (fold 1 only) is timed by ``clock`` into ``got.load_seconds``."""
    if got.data is None:
        began = clock()
        got.data, got.first = run.load_data(quiet=True), run
        got.load_seconds = clock() - began
    elif run.environment().get("data_hash") != got.first.environment().get("data_hash"):
        raise NeuroclassError(f"{got.data.source}: the data changed while the cross-validation ran (fold "
                              f"{i} loaded other examples than fold 1); run it again on unchanging data")
    indices = run.split_indices()
    if not np.array_equal(indices["test"], got.data.indices["test"]):
        raise NeuroclassError(f"{run.path}: fold {i} has another test split than fold 1; the folds "
                              "must share data.test_fraction and train.seed")
    predictor = Predictor.from_folder(run, train_cfg.device)
    val = indices["val"]
    labels = got.data.dataset.y.numpy()
    with use_threads(train_cfg.threads):
        val_proba = predictor.predict_proba_tensor(got.data.dataset.subset(val).x)
        got.test_proba.append(predictor.predict_proba_tensor(got.data.part("test").x))
    got.index.append(val)
    got.fold.append(np.full(len(val), i, dtype=np.int64))
    got.proba.append(val_proba.astype(np.float32))
    val_metrics = classification_metrics(labels[val], val_proba, predictor.classes)
    got.runs.append(FoldRun(i, final, val_metrics, run.metrics(), run.timing(), budget))


def _write_summary(summary: RunFolder, got: _Collected, k: int, command: str) -> dict:
    """Every file of the summary folder (the ensemble folder's, oof.npz and cv.json) into the
    partial ``summary``; returns cv.json's content."""
    data, first = got.data, got.first
    meta, environment = first.meta(), first.environment()
    classes = list(meta["classes"])
    labels = data.dataset.y.numpy()
    order = np.argsort(np.concatenate(got.index), kind="stable")
    index = np.concatenate(got.index).astype(np.int64)[order]
    pool = np.union1d(data.indices["train"], data.indices["val"])
    if not np.array_equal(index, pool):  # the folds' validation sets partition the pool
        raise RuntimeError(f"the {k} validation folds do not partition the {len(pool)} pool examples")
    proba = np.concatenate(got.proba)[order]
    test = data.indices["test"]
    ensemble_proba = np.mean(got.test_proba, axis=0)
    test_metrics = classification_metrics(labels[test], ensemble_proba, classes)
    record = {"folds": k, "metrics": summarize([r.val_metrics for r in got.runs]),
              "oof_metrics": classification_metrics(labels[index], proba, classes),
              "fold_ensemble_test_metrics": test_metrics,
              "seed": first.config().train.seed, "stratified": True}
    summary.write_json("ensemble.json", {
        "format": 1, "method": "mean",
        "members": [{"path": f"{FOLDS_DIR}/fold-{r.fold}", "weight": 1.0, "copied": False} for r in got.runs],
        "classes": classes, "kind": meta["kind"], "input_shape": list(meta["input_shape"]),
        "data_hash": environment.get("data_hash")})
    write_text_atomic(summary.file("config.yaml"), first.config_text())
    split_record = first.split_record()
    summary.write_split({"train": pool, "val": pool[:0], "test": test},
                        {"seed": split_record.get("seed"), "test": split_record.get("test"),
                         "val": "stratified k-fold (oof.npz)", "folds": k, "stratified": True})
    summary.write_json("environment.json", {**environment, "command": command})
    summary.write_json("model.json", {"kind": meta["kind"], "classes": classes,
                                      "input_shape": list(meta["input_shape"]),
                                      "preprocessing": meta.get("preprocessing", {}), "ensemble": True})
    summary.write_json("metrics.json", test_metrics)
    buf = io.BytesIO()
    np.savez_compressed(buf, index=index, fold=np.concatenate(got.fold)[order],
                        label=labels[index].astype(np.int64), proba=proba.astype(np.float32))
    write_bytes_atomic(summary.file("oof.npz"), buf.getvalue())
    summary.write_json("cv.json", record)
    return record
