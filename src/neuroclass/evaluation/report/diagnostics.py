"""The report's analyses beyond metrics: leakage, robustness, dead units, likely mislabelled
examples and the doctor's findings, each on a bounded subsample so that a report on a 60k-image run
stays within seconds on a CPU.

Each analysis runs through ``guarded``: a failure becomes {"error": ...} in report.json and one
warning line, so one broken analysis never costs the rest of the report. The analysis modules are
imported inside the guarded call for the same reason (and to keep importing the report package light).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict

import numpy as np
import torch

from neuroclass.config import Config
from neuroclass.evaluation.report.inputs import ReportInputs
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


def train_sample(inputs: ReportInputs, limit: int, seed: int = 0) -> np.ndarray:
    """Up to ``limit`` training-split positions in the dataset, seeded, sorted."""
    train = inputs.indices["train"]
    if len(train) <= limit:
        return train
    return np.sort(np.random.default_rng(seed).choice(train, size=limit, replace=False))


def leakage(inputs: ReportInputs) -> dict:
    """Exact and near duplicates between the training split and the evaluation data."""
    def compute():
        from neuroclass.data.leakage import find_duplicates

        train_x = inputs.dataset.x[torch.as_tensor(inputs.indices["train"])]
        result = find_duplicates(train_x.numpy(), inputs.eval_x.numpy(), max_pairs=MAX_PAIRS)
        result["compared"] = f"training split ({len(train_x):,} examples) vs {inputs.eval_what}"
        return result

    return guarded("leakage check", compute)


def robustness(inputs: ReportInputs) -> dict:
    """Accuracy under growing perturbations of the evaluation images; tables are skipped."""
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
                                 max_examples=ROBUSTNESS_EXAMPLES)

    return guarded("robustness curves", compute)


def dead_relu(inputs: ReportInputs) -> dict:
    """ReLU units that never fire on a sample of training images (wasted capacity)."""
    def compute():
        from neuroclass.evaluation.activations import dead_relu_fraction

        x = inputs.dataset.x[torch.as_tensor(train_sample(inputs, DEAD_RELU_EXAMPLES))]
        predictor = inputs.predictor
        return dead_relu_fraction(predictor.model, x, predictor.device, max_examples=DEAD_RELU_EXAMPLES)

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
        return result

    return guarded("mislabel search", compute)


def pretrained(inputs: ReportInputs, train_counts: list[int]) -> dict | None:
    """The advice to start from ImageNet weights for this run's data (as evaluation.pretrained_advice
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


def doctor(inputs: ReportInputs, report: dict, proba: np.ndarray) -> dict:
    """The doctor's findings from the curves, metrics and the facts gathered above."""
    dead = dead_relu(inputs)
    wrong_labels = mislabelled(inputs, proba)
    train_counts = report["data"]["class_counts"]["train"]
    meta = inputs.predictor.meta
    facts = {"class_counts": dict(zip(inputs.classes, train_counts)),
             "dead_relu": None if "error" in dead else dead,
             "leakage": None if "error" in report["data"]["leakage"] else report["data"]["leakage"],
             "mislabelled": None if "error" in wrong_labels else wrong_labels,
             "stop_reason": report["training"]["stop_reason"], "stop_detail": report["training"]["stop_detail"],
             "optim": asdict(inputs.cfg.optim), "epochs": inputs.timing.get("epochs"),
             "model": {"name": meta["family"], "options": meta["options"]},
             "train": {"label_smoothing": inputs.cfg.train.label_smoothing},
             "data": {"kind": inputs.kind, "input_shape": list(meta["input_shape"])},
             "pretrained": pretrained(inputs, train_counts)}

    def compute():
        from neuroclass.evaluation.doctor import diagnose

        return diagnose(inputs.history, report["metrics"], facts)

    findings = guarded("doctor", compute)
    failed = isinstance(findings, dict)  # guarded's {"error": ...}
    return {"findings": [] if failed else findings, "error": findings["error"] if failed else None,
            "dead_relu": dead, "mislabelled": wrong_labels}
