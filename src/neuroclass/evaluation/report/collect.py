"""report.json: every number the report shows, computed from a run (see inputs.load_inputs).

Each section is a plain-JSON dict built by one function; the page (html.py) and the plots (plots.py)
only read this dict (and, for pictures of examples, the inputs), so the numbers a reader sees are
exactly those in report.json.

Example::

    report = collect(load_inputs("runs/x"))
    report["metrics"]["accuracy"]
    # -> 0.91
"""
from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timezone

import numpy as np
import torch
from sklearn import metrics as skm

from neuroclass.inference.calibrate import (abstention_curve, calibrate, expected_calibration_error,
                                             reliability_curve, softmax_with_temperature)
from neuroclass.data.issues import DataIssues
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.evaluation.report.columns import column_summary
from neuroclass.evaluation.report import diagnostics
from neuroclass.evaluation.report.importance import importance_section
from neuroclass.evaluation.report.inputs import ReportInputs
from neuroclass.evaluation.report.timebox import TimeBox
from neuroclass.training.state import read_stop_reason
from neuroclass.training.throughput import count_flops

SAMPLES_PER_CLASS = 8  # images per class in the data section's grid
MAX_SAMPLE_CLASSES = 20  # a grid of more rows stops being readable at a glance
MISTAKES = 16  # highest-loss examples in the gallery
MAX_FEATURES = 60  # rows of the feature summary for tables
ISSUES_SHOWN = 20  # entries of each data_issues.json list on the page; the file holds them all
FILE_ISSUES = ("ignored", "skipped", "warnings")  # DataIssues lists of files, each with a reason


def collect(inputs: ReportInputs, box: TimeBox | None = None) -> dict:
    """All sections of report.json, in page order; the optional analyses within ``box``'s time
    (timebox.py; None: all in full)."""
    proba = inputs.predictor.probabilities(inputs.eval_logits)  # what `predict` would say
    y = inputs.eval_y.numpy()
    metrics = metrics_section(y, proba, inputs.classes)
    data = data_section(inputs)
    data["leakage"] = diagnostics.budgeted(box, "leakage", lambda n: diagnostics.leakage(inputs, n))
    report = {
        "report": {"generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "run": inputs.run.name, "path": str(inputs.run), "evaluated_on": inputs.eval_what},
        "summary": summary_section(inputs, metrics),
        "data": data,
        "training": training_section(inputs),
        "metrics": metrics,
        "confusion": confusion_section(metrics),
        "mistakes": mistakes_section(inputs, proba),
        "calibration": calibration_section(inputs),
        "abstention": {"curve": abstention_curve(y, proba)},
        "robustness": (diagnostics.robustness(inputs) if inputs.kind != "image" else  # tables: none
                       diagnostics.budgeted(box, "robustness", lambda n: diagnostics.robustness(inputs, n))),
        "importance": importance_section(inputs, box),  # images: none
    }
    report["doctor"] = diagnostics.doctor(inputs, report, proba, box)
    report["reproduce"] = reproduce_section(inputs)
    return plain(report)


def summary_section(inputs: ReportInputs, metrics: dict) -> dict:
    model = inputs.predictor.model
    meta = inputs.predictor.meta
    timing = inputs.timing
    classical = timing.get("classical") if "classical" in meta else None
    return {
        "task": f"{'image' if inputs.kind == 'image' else 'table'} classification, "
                f"{len(inputs.classes)} classes",
        "kind": inputs.kind, "classes": list(inputs.classes),
        "data_source": inputs.cfg.data.source,
        "data_hash": inputs.environment.get("data_hash"),
        "data_hash_matches": inputs.data_hash_matches,
        "split_sizes": inputs.split_record.get("sizes", {}),
        "evaluated_on": inputs.eval_what,
        "model_family": meta["family"], "model_options": meta["options"],
        "input_shape": meta["input_shape"],
        # a classical model (classical/model.py) has no parameters or FLOPs to count: its size on disk
        "parameters": None if classical else int(sum(p.numel() for p in model.parameters())),
        "flops_per_example": None if classical else count_flops(model, tuple(meta["input_shape"])),
        "classical": classical, "model_file_bytes": _model_file_bytes(inputs.predictor.path, meta),
        "temperature": inputs.predictor.policy.temperature,
        "tta": inputs.predictor.policy.tta,  # test-time augmentation predict applies
        "headline": {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")},
        "train_seconds": timing.get("train_seconds"), "epochs": timing.get("epochs"),
        "train_examples_per_second": timing.get("train_examples_per_second"),
        "inference_examples_per_second": timing.get("inference_examples_per_second"),
    }


def _model_file_bytes(folder, meta: dict) -> int | None:
    """Bytes of the files that hold the model (weights, or a classical model's native file), or
    None without a run folder."""
    if folder is None:
        return None
    names = ["model.safetensors", *([meta["classical"]["file"]] if "classical" in meta else [])]
    return sum((folder / n).stat().st_size for n in names if (folder / n).is_file())


def data_section(inputs: ReportInputs) -> dict:
    """Class counts per split, sample indices per class (images) or a feature summary (tables)."""
    k = len(inputs.classes)
    labels = inputs.dataset.y.numpy()
    counts = {name: np.bincount(labels[index], minlength=k).tolist()
              for name, index in inputs.indices.items()}
    if inputs.eval_data:
        counts["evaluation"] = np.bincount(inputs.eval_y.numpy(), minlength=k).tolist()
    section = {"classes": list(inputs.classes), "class_counts": counts,
               "split_method": {k2: v for k2, v in inputs.split_record.items() if k2 != "sizes"},
               "skipped_files": int(inputs.dataset.skipped),  # unreadable files left out at load
               "issues": issues_summary(inputs.data_issues)}
    train_index = inputs.indices["train"]
    if inputs.kind == "image":
        rng = np.random.default_rng(0)  # the same samples every time the report is made
        samples = {}
        for c, name in enumerate(inputs.classes[:MAX_SAMPLE_CLASSES]):
            members = train_index[labels[train_index] == c]
            chosen = rng.choice(members, size=min(SAMPLES_PER_CLASS, len(members)), replace=False)
            samples[name] = np.sort(chosen).tolist()
        section["samples"] = samples
    else:
        preprocessing = inputs.predictor.meta["preprocessing"]
        section["features"] = feature_summary(inputs.dataset.x[torch.as_tensor(train_index)].numpy(),
                                              preprocessing.get("feature_names"))
        if inputs.raw_x is not None and "table" in preprocessing:  # the file's columns, in their units
            section["columns"] = column_summary(inputs.raw_x[torch.as_tensor(train_index)].numpy(),
                                                preprocessing["table"], str(inputs.cfg.data.source))
    return section


def issues_summary(issues: DataIssues, shown: int = ISSUES_SHOWN) -> dict:
    """data_issues.json for the page: counts of each kind, the first ``shown`` entries of each list
    (a folder may hold thousands of ignored files) and the file lists' reasons with their counts.

    >>> from neuroclass.data.issues import FileIssue
    >>> issues_summary(DataIssues(ignored=[FileIssue("a/.DS_Store", "metadata")]))["counts"]["ignored"]
    1
    """
    record = issues.to_json()
    out = {"counts": {kind: len(items) for kind, items in record.items()},
           "shown": {kind: items[:shown] for kind, items in record.items()},
           "reasons": {kind: dict(Counter(item["reason"] for item in record[kind]).most_common())
                       for kind in FILE_ISSUES}}
    # an ignored folder (its path ends with "/") counts once, as the loader's warning counts it
    out["ignored_folders"] = sum(item["path"].endswith("/") for item in record["ignored"])
    out["total"] = sum(out["counts"].values())
    return out


def feature_summary(x: np.ndarray, names: list[str] | None) -> dict:
    """Per-feature min, mean, std, max over the training rows (the first MAX_FEATURES features).

    >>> feature_summary(np.array([[0.0, 1.0], [2.0, 1.0]]), ["a", "b"])["rows"][0]
    {'feature': 'a', 'min': 0.0, 'mean': 1.0, 'std': 1.0, 'max': 2.0}
    """
    names = list(names) if names and len(names) == x.shape[1] else [f"x{i}" for i in range(x.shape[1])]
    rows = [{"feature": names[i], "min": float(x[:, i].min()), "mean": float(x[:, i].mean()),
             "std": float(x[:, i].std()), "max": float(x[:, i].max())}
            for i in range(min(MAX_FEATURES, x.shape[1]))]
    return {"count": int(x.shape[1]), "shown": len(rows), "rows": rows}


def training_section(inputs: ReportInputs) -> dict:
    """The curves and how training went. "stop_reason" is a StopReason value (None where the run
    recorded none this version knows); "stop_detail" the stop in words (for a run folder from
    before stop reasons were an enum, the words it recorded); "resumed" each resume of an
    interrupted run: when ("at", UTC) and where (the epoch in progress, 1-based, and the step)."""
    timing = inputs.timing
    reason = read_stop_reason(timing.get("stop_reason"))
    detail = timing.get("stop_detail") if reason else timing.get("stop_reason")
    return {"history": inputs.history, "epochs": timing.get("epochs"), "best_epoch": timing.get("best_epoch"),
            "classical": timing.get("classical"),  # a classical family's fit: rounds, early stopping
            "stop_reason": reason.value if reason else None, "stop_detail": detail or "",
            "train_seconds": timing.get("train_seconds"), "total_seconds": timing.get("total_seconds"),
            "resumed": [{"at": r.get("at"), "epoch": r.get("epoch"), "step": r.get("step")}
                        for r in timing.get("resumed") or []],
            "patience": inputs.cfg.train.patience,
            "optim": {"name": inputs.cfg.optim.name, "lr": inputs.cfg.optim.lr,
                      "schedule": inputs.cfg.optim.schedule,
                      "weight_decay": inputs.cfg.optim.weight_decay}}


def metrics_section(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict:
    """classification_metrics plus macro and weighted precision/recall/F1 averages, both over the
    tested classes (those with examples in ``y``; the others are listed in "not_tested")."""
    metrics = classification_metrics(y, proba, classes)
    y_pred = np.asarray(proba).argmax(axis=1)
    labels = np.array([i for i, name in enumerate(classes) if name not in metrics["not_tested"]])
    averages = {}
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, y_pred, labels=labels, average=average,
                                                         zero_division=0)
        averages[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    metrics["averages"] = averages
    return metrics


def confusion_section(metrics: dict) -> dict:
    counts = np.asarray(metrics["confusion_matrix"], dtype=np.float64)
    support = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, support, out=np.zeros_like(counts), where=support > 0)
    return {"classes": metrics["classes"], "counts": metrics["confusion_matrix"],
            "normalized": normalized.tolist(), "most_confused": metrics["most_confused"]}


def mistakes_section(inputs: ReportInputs, proba: np.ndarray, n: int = MISTAKES) -> dict:
    """The ``n`` evaluation examples with the highest loss -log p(true class), wrong ones only;
    each with its ``index`` in the evaluated data and, for a table file, its data ``row`` in the
    file (counted from 1; ``ReportInputs.file_rows``); "rows" says which the page shows ("data row"
    or "index")."""
    y = inputs.eval_y.numpy()
    proba = np.asarray(proba, dtype=np.float64)
    p_true = proba[np.arange(len(y)), y]
    loss = -np.log(np.clip(p_true, 1e-15, 1.0))
    predicted = proba.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    order = wrong[np.argsort(-loss[wrong], kind="stable")][:n]
    test_index = None if inputs.eval_data else inputs.indices["test"]
    examples = [{"index": int(i), "dataset_index": None if test_index is None else int(test_index[i]),
                 "true": inputs.classes[y[i]], "predicted": inputs.classes[predicted[i]],
                 "probability": float(proba[i, predicted[i]]), "true_probability": float(p_true[i]),
                 "loss": float(loss[i])} for i in order]
    return {"count_wrong": int(len(wrong)), "n": int(len(y)), "rows": "data row" if inputs.eval_file else "index",
            "examples": inputs.with_file_rows(examples)}


def calibration_section(inputs: ReportInputs) -> dict:
    """Reliability and ECE on the evaluation data with T = 1 and with the model's temperature, and
    the guarded fit on the validation split (the same fit that chose the saved temperature)."""
    y = inputs.eval_y.numpy()
    saved = inputs.predictor.policy.temperature
    before = softmax_with_temperature(inputs.eval_logits, 1.0)
    after = softmax_with_temperature(inputs.eval_logits, saved)
    labels = np.arange(len(inputs.classes))
    guard = None
    if inputs.val_logits is not None:
        val_y = inputs.dataset.y[torch.as_tensor(inputs.indices["val"])]
        guard = calibrate(inputs.val_logits, val_y)
        guard["n"] = int(len(val_y))
    return {
        "temperature": saved, "guard": guard,
        "ece_before": expected_calibration_error(y, before),
        "ece_after": expected_calibration_error(y, after),
        "log_loss_before": float(skm.log_loss(y, before, labels=labels)),
        "log_loss_after": float(skm.log_loss(y, after, labels=labels)),
        "reliability_before": reliability_curve(y, before),
        "reliability_after": reliability_curve(y, after),
    }


def reproduce_section(inputs: ReportInputs) -> dict:
    env = inputs.environment
    replay = f"neuroclass train {inputs.cfg.data.source} --config {inputs.run / 'config.yaml'}"
    return {"command": env.get("command") or "", "replay": replay, "seed": env.get("seed"),
            "environment": env, "config_yaml": inputs.config_text}


def plain(value):
    """``value`` as strict JSON: numpy scalars to Python, NaN and infinities to None.

    >>> plain({"a": np.float32(0.5), "b": [float("nan"), np.int64(3)]})
    {'a': 0.5, 'b': [None, 3]}
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
