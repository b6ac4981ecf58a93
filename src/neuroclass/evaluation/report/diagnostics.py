"""The report's analyses beyond metrics: leakage, robustness, dead units, likely mislabelled
examples and the doctor's findings, each on a bounded subsample so that a report on a 60k-image run
stays within seconds on a CPU.

Each analysis runs through ``guarded``: a failure becomes {"error": ...} in report.json and one
warning line, so one broken analysis never costs the rest of the report. The analysis modules are
imported inside the guarded call for the same reason (and to keep importing the report package light).
Under a deadline (timebox.py) ``budgeted`` runs an analysis on the sample the time left allows, or
records {"skipped": "skipped: ... (needs about 2.4 s; the time budget left 0.8 s)"} instead.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict
from typing import Callable

import numpy as np
import torch

from neuroclass.config import Config
from neuroclass.errors import counted
from neuroclass.evaluation.report.inputs import ReportInputs
from neuroclass.evaluation.report.timebox import FULL, SKIP, TimeBox
from neuroclass.inference import predict_logits

ROBUSTNESS_EXAMPLES = 1000  # 4 perturbations x levels x this many forward passes, plus TTA
MISLABELLED = 16  # likely mislabelled examples listed (and pictured) by the doctor
DEAD_RELU_EXAMPLES = 1024
MAX_PAIRS = 12  # duplicate pairs listed (and pictured) in the data section


def guarded(what: str, compute):
    """``compute()``, or {"error": "..."} with one warning when it fails.

    Example::

        guarded("robustness", lambda: 1 / 0)["error"]
        # -> 'ZeroDivisionError: division by zero'
    """
    try:
        return compute()
    except Exception as exc:  # an analysis bug must not cost the whole report
        message = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"report: {what} skipped ({message})", stacklevel=2)
        return {"error": message}


def budgeted(box: TimeBox | None, name: str, analysis: Callable[[int | None], dict]) -> dict:
    """``analysis(n)`` on the ``n`` examples that ``box`` gives part ``name`` (None: its full size,
    also without a box), or {"skipped": the page's line} when the box gives it none."""
    if box is None:
        return analysis(None)
    decision = box.decide(name)
    try:
        if decision.run == SKIP:
            return {"skipped": decision.line}
        return analysis(None if decision.run == FULL else decision.examples)
    finally:
        box.done(name)


def usable(result: dict) -> dict | None:
    """An analysis's result, or None where it failed or was skipped (no facts for the doctor)."""
    return None if "error" in result or "skipped" in result else result


def train_positions(inputs: ReportInputs, limit: int | None, seed: int = 0) -> np.ndarray:
    """Up to ``limit`` (None: all) positions in the training split, seeded, sorted."""
    n = len(inputs.indices["train"])
    if limit is None or n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def train_sample(inputs: ReportInputs, limit: int, seed: int = 0) -> np.ndarray:
    """Up to ``limit`` training-split positions in the dataset, seeded, sorted."""
    return inputs.indices["train"][train_positions(inputs, limit, seed)]


def leakage(inputs: ReportInputs, limit: int | None = None) -> dict:
    """Exact and near duplicates between the training split (up to ``limit`` of its examples,
    seeded; None: all) and the evaluation data. Pairs name positions in the training split."""
    def compute():
        from neuroclass.data.leakage import find_duplicates

        train = inputs.indices["train"]
        chosen = train_positions(inputs, limit)
        train_x = inputs.dataset.x[torch.as_tensor(train[chosen])]
        result = find_duplicates(train_x.numpy(), inputs.eval_x.numpy(), max_pairs=MAX_PAIRS)
        for pair in result["pairs"]:
            pair["train"] = int(chosen[pair["train"]])
        compared = (counted(len(train), "example") if len(chosen) == len(train) else
                    f"a sample of {len(chosen):,} of its {counted(len(train), 'example')}")
        result["compared"] = f"training split ({compared}) vs {inputs.eval_what}"
        return result

    return guarded("leakage check", compute)


def robustness(inputs: ReportInputs, limit: int | None = None) -> dict:
    """Accuracy under growing perturbations of up to ``limit`` (None: ROBUSTNESS_EXAMPLES)
    evaluation images; tables are skipped."""
    if inputs.kind != "image":
        return {"skipped": "robustness curves perturb pixels (noise, rotation, blur, brightness); "
                           "this run's inputs are table rows, which have no such perturbations"}
    predictor = inputs.predictor

    def predict_logits_fn(x):
        # the bare model, without the run's test-time augmentation: the curves then show the
        # network's own robustness, and the TTA comparison starts from the plain model
        return predict_logits(predictor.model, torch.as_tensor(x), predictor.device)

    def compute():
        from neuroclass.evaluation.robustness import robustness_curves

        return robustness_curves(predict_logits_fn, inputs.eval_x, inputs.eval_y, seed=0,
                                 max_examples=limit or ROBUSTNESS_EXAMPLES)

    return guarded("robustness curves", compute)


def dead_relu(inputs: ReportInputs, limit: int | None = None) -> dict:
    """ReLU units that never fire on a sample of up to ``limit`` (None: DEAD_RELU_EXAMPLES)
    training examples (wasted capacity)."""
    limit = limit or DEAD_RELU_EXAMPLES

    def compute():
        from neuroclass.evaluation.activations import dead_relu_fraction

        x = inputs.dataset.x[torch.as_tensor(train_sample(inputs, limit))]
        predictor = inputs.predictor
        return dead_relu_fraction(predictor.model, x, predictor.device, max_examples=limit)

    return guarded("dead ReLU count", compute)


def mislabelled(inputs: ReportInputs, proba: np.ndarray) -> dict:
    """Evaluation examples whose label the model contradicts most confidently (confident learning).

    Confident learning needs probabilities from a model that never trained on the examples: the
    training split's own probabilities would vouch for every label the model memorised, so the
    evaluation data (``proba``, already computed for the metrics) is where label errors can be seen.
    """
    def compute():
        from neuroclass.evaluation.mislabel import likely_mislabelled

        result = likely_mislabelled(proba, inputs.eval_y.numpy(), inputs.classes, top=MISLABELLED)
        result["searched"] = inputs.eval_what
        result["rows"] = "data row" if inputs.eval_file else "index"
        result["examples"] = inputs.with_file_rows(result["examples"])
        return result

    return guarded("mislabel search", compute)


def pretrained(inputs: ReportInputs, train_counts: list[int]) -> dict | None:
    """The advice to start from ImageNet weights for this run's data (as training.pretrained_advice
    gives it, in fields), or None where it would not help."""
    def compute():
        from neuroclass.training.pretrained_advice import pretrained_advice

        cfg, meta = inputs.cfg, inputs.predictor.meta
        tv = meta["family"] == "tv" and meta["options"].get("arch")
        image = inputs.kind == "image"
        advice = pretrained_advice(
            source=cfg.data.source, input_shape=tuple(meta["input_shape"]) if image else None,
            train_images=int(sum(train_counts)), classes=len(inputs.classes),
            model=f"tv:{tv}" if tv else meta["family"],
            starting_point=bool(cfg.model.pretrained or cfg.model.weights or cfg.model.from_run),
            time_budget=cfg.train.time_budget, out=None if cfg.out == Config().out else cfg.out,
            accelerator=not str(inputs.environment.get("device") or "cpu").startswith("cpu"))
        return asdict(advice) if advice else None

    advice = guarded("pretrained-weights advice", compute)
    return None if advice is None or "error" in advice else advice


def doctor(inputs: ReportInputs, report: dict, proba: np.ndarray, box: TimeBox | None = None) -> dict:
    """The doctor's findings from the curves, metrics and the facts gathered above (the dead-unit
    count and the mislabel search within ``box``'s time, if given)."""
    dead = budgeted(box, "dead_relu", lambda n: dead_relu(inputs, n))
    wrong_labels = budgeted(box, "mislabelled", lambda n: mislabelled(inputs, proba))
    train_counts = report["data"]["class_counts"]["train"]
    meta = inputs.predictor.meta
    facts = {"class_counts": dict(zip(inputs.classes, train_counts)),
             "dead_relu": usable(dead), "leakage": usable(report["data"]["leakage"]),
             "mislabelled": usable(wrong_labels),
             "stop_reason": report["training"]["stop_reason"], "stop_detail": report["training"]["stop_detail"],
             "optim": asdict(inputs.cfg.optim), "epochs": inputs.timing.get("epochs"),
             "model": {"name": meta["family"], "options": meta["options"]},
             "train": {"label_smoothing": inputs.cfg.train.label_smoothing},
             "data": {"kind": inputs.kind, "input_shape": list(meta["input_shape"])},
             "pretrained": pretrained(inputs, train_counts)}

    def compute():
        from neuroclass.evaluation.doctor import diagnose

        if not any(row.get("loss") is not None for row in inputs.history):
            return []  # no training curve to read (a classical family is fitted, not trained by epochs)
        return diagnose(inputs.history, report["metrics"], facts)

    findings = guarded("doctor", compute)
    failed = isinstance(findings, dict)  # guarded's {"error": ...}
    return {"findings": [] if failed else findings, "error": findings["error"] if failed else None,
            "dead_relu": dead, "mislabelled": wrong_labels}
