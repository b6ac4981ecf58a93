"""What the doctor's rules read: one run's numbers parsed once, and the helpers the rules share.

``parse_run`` turns the history rows (metrics.csv), the test metrics and the facts into a ``Run``;
the rules (evaluation/doctor.py, evaluation/doctor_chance.py) read nothing else. A finding is
{"rule", "severity" (error | warning | info), "finding", "fix"}, made by ``make_finding``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from neuroclass.errors import NeuroclassError
from neuroclass.training.state import StopReason, read_stop_reason

# Loss more than doubling its best epoch so far: warm-up and schedules never do that on purpose ...
EXPLODE_RATIO = 2.0
# ... by more than this share of the first epoch's loss: a network that fits its training set
# without label smoothing (the glass-box network) reaches losses of 1e-8, where doubling is noise
EXPLODE_MIN_RISE = 0.1
# facts that, when given, must be dicts (their keys are read by name)
DICT_FACTS = ("class_counts", "dead_relu", "leakage", "mislabelled", "optim", "model", "train", "data",
              "pretrained")


@dataclass
class Run:
    """The numbers the rules read, parsed once. Per-epoch lists; val_* hold None without a
    validation split; classes is K (0 when unknown); model the family name ("" when unknown);
    smoothing the training loss's label smoothing (None when unknown); kind "image", "table" or ""
    (unknown); input_shape the model's input, (C, H, W) for images (() when unknown)."""
    loss: list
    accuracy: list
    val_loss: list
    val_accuracy: list
    metrics: dict
    facts: dict
    classes: int
    lr: Optional[float]
    epochs: int
    model: str
    smoothing: Optional[float] = None
    kind: str = ""
    input_shape: tuple = ()

    @property
    def chance(self) -> float:
        return 1.0 / self.classes if self.classes else 0.0


def make_finding(rule: str, severity: str, finding: str, fix: str) -> dict:
    return {"rule": rule, "severity": severity, "finding": finding, "fix": fix}


def pct(x) -> str:
    """A share as a percentage with one decimal; "unknown" for anything but a number."""
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "unknown"


def _num(value, where: str) -> Optional[float]:
    if value is None or value in ("", "None"):  # csv rows hold "" (or a str(None)) for no value
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise NeuroclassError(f"diagnose: history value {where} must be a number; got {value!r}") from None


def parse_run(history, metrics, facts) -> Run:
    """The Run of ``diagnose``'s arguments; NeuroclassError naming the first malformed one."""
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise NeuroclassError("diagnose: history must be a list of dicts (rows of metrics.csv)")
    if not isinstance(metrics, dict) or not isinstance(facts, dict):
        raise NeuroclassError("diagnose: metrics and facts must be dicts")
    cols = {key: [_num(r.get(key), f"{key} at row {i}") for i, r in enumerate(history)]
            for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    if any(v is None for v in cols["loss"] + cols["accuracy"]):
        raise NeuroclassError("diagnose: every history row needs a training loss and accuracy")
    for key in DICT_FACTS:
        if facts.get(key) is not None and not isinstance(facts[key], dict):
            raise NeuroclassError(f"diagnose: facts['{key}'] must be a dict; got {type(facts[key]).__name__}")
    classes = len(metrics.get("per_class") or metrics.get("classes") or facts.get("class_counts") or ())
    lr = (facts.get("optim") or {}).get("lr")
    smoothing = (facts.get("train") or {}).get("label_smoothing")
    if smoothing is not None and not (isinstance(smoothing, (int, float)) and 0 <= smoothing < 1):
        raise NeuroclassError(f"diagnose: facts['train']['label_smoothing'] must be a number in [0, 1) "
                              f"(train.label_smoothing); got {smoothing!r}")
    data = facts.get("data") or {}
    shape = data.get("input_shape") or ()
    if not isinstance(shape, (list, tuple)) or not all(isinstance(n, int) and n > 0 for n in shape):
        raise NeuroclassError(f"diagnose: facts['data']['input_shape'] must be a list of sizes, e.g. "
                              f"[3, 64, 64]; got {shape!r}")
    return Run(cols["loss"], cols["accuracy"], cols["val_loss"], cols["val_accuracy"], metrics, facts,
               classes, float(lr) if lr is not None else None, int(facts.get("epochs") or len(history)),
               str((facts.get("model") or {}).get("name") or "").split(":")[0],
               None if smoothing is None else float(smoothing), str(data.get("kind") or ""), tuple(shape))


def lr_fix(run: Run, factor: float, verb: str) -> str:
    """The --set that multiplies the run's learning rate by ``factor`` (a template when unknown)."""
    if run.lr is None:  # the run's rate is unknown: say how much, relative to it
        fold = 1 / factor if factor < 1 else factor
        op = "/" if factor < 1 else "x"
        return f"{verb} optim.lr {fold:g}-fold (--set optim.lr=<current {op} {fold:g}>)"
    return f"{verb} optim.lr (now {run.lr:g}) with --set optim.lr={run.lr * factor:.3g}"


# ----------------------------------------------------------------------------- history facts

def non_finite_epoch(run: Run) -> Optional[int]:
    """The first epoch (1-based) whose training or validation loss is NaN or infinite."""
    for i, (a, b) in enumerate(zip(run.loss, run.val_loss)):
        if not math.isfinite(a) or (b is not None and not math.isfinite(b)):
            return i + 1
    return None


def explosion(run: Run) -> Optional[tuple[int, int]]:
    """(best epoch, exploded epoch), both 1-based, of the first loss above EXPLODE_RATIO x its best
    and more than EXPLODE_MIN_RISE x the first epoch's loss above it."""
    best = 0
    for e in range(1, len(run.loss)):
        rise = run.loss[e] - run.loss[best]
        if run.loss[e] > EXPLODE_RATIO * run.loss[best] and rise > EXPLODE_MIN_RISE * abs(run.loss[0]):
            return best + 1, e + 1
        if run.loss[e] < run.loss[best]:
            best = e
    return None


def is_broken(run: Run) -> bool:
    """The loss became non-finite or exploded: the error findings say so, other rules keep quiet."""
    return non_finite_epoch(run) is not None or explosion(run) is not None


def stop_reason(run: Run) -> Optional[StopReason]:
    """Why training stopped, from the recorded StopReason value (None where unknown)."""
    return read_stop_reason(run.facts.get("stop_reason"))


def loss_rises(run: Run) -> list[int]:
    """The epochs (1-based) whose training loss is above the epoch before."""
    return [e + 1 for e in range(1, len(run.loss)) if run.loss[e] > run.loss[e - 1]]
