"""Training doctor: plain findings about a finished run, each with the setting to change.

Pure rules over the run's history (rows of metrics.csv), its test metrics and optional facts that
other analyses measured. A finding is {"rule", "severity" (error | warning | info), "finding" (one
sentence with the numbers), "fix" (the concrete --set to try)}; errors come first. The run's numbers
are parsed in doctor_run.py; the "stuck at chance" rule, which the learning-rate and fit rules here
defer to, is in doctor_chance.py.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

from neuroclass.errors import counted
from neuroclass.evaluation.doctor_chance import find_stuck, stuck_at_chance
from neuroclass.evaluation.doctor_run import (EXPLODE_RATIO, Run, explosion, is_broken, loss_rises, lr_fix,
                                              make_finding, non_finite_epoch, parse_run, pct, stop_reason)
from neuroclass.training.state import StopReason

# Training loss rising between epochs in at least this share of epochs (and at least twice): the
# epoch-mean loss of a stable run falls every epoch, so repeated rises mean the steps overshoot.
OSCILLATION_SHARE, OSCILLATION_MIN_RISES = 1 / 3, 2
SLOW_MIN_EPOCHS = 3  # judge the pace of learning only after a few epochs
SLOW_DECREASE = 0.10  # loss fell by less than 10% from the first to the last epoch
# "near chance": training accuracy less than a quarter of the way from chance (1/K) to 100%
NEAR_CHANCE_SHARE = 0.25
OVERFIT_GAP = 0.05  # training minus validation accuracy; 5 points is more than split noise
VAL_RISE = 0.02  # last validation loss at least 2% above its best: past the best epoch
UNDERFIT_ACCURACY = 0.90  # training accuracy below this ...
UNDERFIT_GAP = 0.02  # ... and this close to validation: capacity or time is short
IMBALANCE_RATIO = 3.0  # largest / smallest training class; beyond 3x the rare class is neglected
DEAD_RELU_SHARE = 0.20  # a fifth of the units unused is capacity lost, not noise
LEAK_ERROR_SHARE = 0.01  # duplicates above 1% of the test split bias its accuracy visibly
MISLABEL_WARN_SHARE = 0.05  # suspects above 5% of the test split: label noise caps accuracy

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
# families whose options have these keys (src/neuroclass/models/*.py)
DROPOUT_FAMILIES = ("cnn", "mlp", "resnet", "inception", "vit")
CAPACITY_KEY = {"cnn": "model.options.channels", "mlp": "model.options.hidden",
                "resnet": "model.options.width", "inception": "model.options.width",
                "vit": "model.options.dim"}
ACTIVATION_CHOICE = {"cnn": "silu", "mlp": "leaky_relu"}  # alternatives that cannot die


def diagnose(history: list[dict], metrics: dict, facts: dict) -> list[dict]:
    """Findings for one run, errors first; a single "ok" finding when no rule fires.

    ``history``: rows with epoch, loss, accuracy, val_loss, val_accuracy (None or "" without a
    validation split), lr, time. ``metrics``: the test metrics (accuracy, per_class, n, ...).
    ``facts``: any of class_counts {name: n}, dead_relu, leakage, mislabelled (the dicts of
    dead_relu_fraction, find_duplicates, likely_mislabelled), stop_reason (a StopReason value as
    timing.json records it, e.g. "time_budget") and stop_detail (the stop in words), optim {name,
    lr, schedule, weight_decay}, epochs, model {name} (the family, to name its own options), train
    {label_smoothing} (the training loss's, for its chance level), data {kind ("image" | "table"),
    input_shape [C, H, W]}, pretrained (the fields of training.pretrained_advice's advice: command,
    weights; offered when a run is stuck at chance).

    Example::

        diagnose(history, metrics, {"optim": {"lr": 0.1}})[0]["fix"]
        # -> 'lower optim.lr (now 0.1) with --set optim.lr=0.01'
    """
    run = parse_run(history, metrics, facts)
    findings = [f for rule in RULES if (f := rule(run)) is not None]
    if not findings:
        checked = ["loss and learning rate", "fit"] if history else []
        optional = (("class_counts", "class balance"), ("dead_relu", "dead units"),
                    ("leakage", "leakage"), ("mislabelled", "labels"))
        checked += [name for key, name in optional if facts.get(key)]
        findings = [make_finding("ok", "info", f"No problem found in the checks that had data "
                                 f"({', '.join(checked) or 'none'}); test accuracy "
                                 f"{pct(metrics.get('accuracy'))}.", "none needed")]
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f["severity"]])


# ----------------------------------------------------------------------------- loss and learning rate

def loss_not_finite(run: Run) -> Optional[dict]:
    epoch = non_finite_epoch(run)
    if epoch is None and stop_reason(run) is not StopReason.DIVERGED:
        return None
    where = f"at epoch {epoch}" if epoch else f"({run.facts.get('stop_detail') or 'training diverged'})"
    warmup = ("" if (run.facts.get("optim") or {}).get("schedule") == "onecycle"
              else "; the onecycle schedule's warm-up also helps (--set optim.schedule=onecycle)")
    return make_finding("loss_not_finite", "error", f"The loss became NaN or infinite {where}: training "
                        "diverged and the weights are not usable.", lr_fix(run, 0.1, "lower") + warmup)


def loss_exploding(run: Run) -> Optional[dict]:
    if non_finite_epoch(run) is not None or (found := explosion(run)) is None:
        return None
    best, worst = found
    return make_finding("loss_exploding", "error",
                        f"The training loss rose from {run.loss[best - 1]:.3g} (epoch {best}) to "
                        f"{run.loss[worst - 1]:.3g} (epoch {worst}), more than {EXPLODE_RATIO:g}x its "
                        "best: the optimisation is blowing up.", lr_fix(run, 0.1, "lower"))


def lr_too_high(run: Run) -> Optional[dict]:
    if not run.loss or is_broken(run) or find_stuck(run) is not None:
        return None  # the error findings above already say it, with a stronger fix
    rises = loss_rises(run)
    chance_loss = math.log(run.classes) if run.classes > 1 else math.inf
    if run.loss[0] > chance_loss:
        why = (f"the first epoch's mean training loss {run.loss[0]:.3g} is above ln {run.classes} = "
               f"{chance_loss:.3g}, the loss of a uniform guess")
    elif len(rises) >= OSCILLATION_MIN_RISES and len(rises) >= OSCILLATION_SHARE * (len(run.loss) - 1):
        why = (f"the training loss rose in {len(rises)} of {len(run.loss) - 1} epochs "
               f"(epochs {', '.join(map(str, rises))})")
    else:
        return None
    return make_finding("lr_too_high", "warning", f"The learning rate looks too high: {why}.",
                        lr_fix(run, 1 / 3, "lower"))


def _learning_too_slowly(run: Run) -> Optional[str]:
    if len(run.loss) < SLOW_MIN_EPOCHS or loss_rises(run) or non_finite_epoch(run) is not None:
        return None
    if run.classes > 1 and run.loss[0] > math.log(run.classes):
        return None  # worse than guessing from the start: too high, not too low
    drop = (run.loss[0] - run.loss[-1]) / run.loss[0] if run.loss[0] > 0 else 1.0
    acc = run.accuracy[-1]
    near_chance = run.classes > 1 and acc < run.chance + NEAR_CHANCE_SHARE * (1 - run.chance)
    if near_chance:
        return f"training accuracy is {pct(acc)}, near chance ({pct(run.chance)})"
    if drop < SLOW_DECREASE and acc < UNDERFIT_ACCURACY:
        return (f"the training loss fell only {100 * drop:.0f}% ({run.loss[0]:.3g} to "
                f"{run.loss[-1]:.3g}) and training accuracy is {pct(acc)}")
    return None


def lr_too_low(run: Run) -> Optional[dict]:
    why = _learning_too_slowly(run)
    if why is None or find_stuck(run) is not None:
        return None  # stuck at chance, not slow: that error's fix lowers the rate
    return make_finding("lr_too_low", "warning",
                        f"Learning is slow: after {counted(len(run.loss), 'epoch')} {why}.",
                        lr_fix(run, 10.0, "raise"))


# ----------------------------------------------------------------------------- fit

def overfitting(run: Run) -> Optional[dict]:
    pairs = [(a, l) for a, l in zip(run.val_accuracy, run.val_loss) if a is not None and l is not None]
    if len(pairs) < 2 or not all(math.isfinite(l) for _, l in pairs):
        return None
    val_acc, val_loss = pairs[-1]
    gap = run.accuracy[-1] - val_acc
    best = min(range(len(pairs)), key=lambda i: pairs[i][1])
    if gap <= OVERFIT_GAP or val_loss < (1 + VAL_RISE) * pairs[best][1]:
        return None
    decay = (run.facts.get("optim") or {}).get("weight_decay")
    decay_fix = (f"raise optim.weight_decay (now {decay:g}) with --set optim.weight_decay={decay * 5:.3g}"
                 if isinstance(decay, (int, float)) and decay > 0
                 else "raise optim.weight_decay, e.g. --set optim.weight_decay=0.005")
    return make_finding("overfitting", "warning",
                        f"Training accuracy {pct(run.accuracy[-1])} is {100 * gap:.1f} points above "
                        f"validation accuracy {pct(val_acc)}, and validation loss rose from "
                        f"{pairs[best][1]:.3g} (epoch {best + 1}) to {val_loss:.3g}: the model memorises "
                        "the training set.", "; ".join(f for f in (
                            "augment images with --set augment.enabled=true", decay_fix,
                            _dropout_fix(run), _patience_fix(run)) if f))


def _dropout_fix(run: Run) -> str:
    if run.model and run.model not in DROPOUT_FAMILIES:
        return ""
    now = ((run.facts.get("model") or {}).get("options") or {}).get("dropout")
    if isinstance(now, (int, float)):
        more = min(now + 0.2, 0.6)  # beyond ~0.6 dropout starves the layer after it
        return f"raise model.options.dropout (now {now:g}) with --set model.options.dropout={more:.2g}"
    where = "" if run.model else f" (families {', '.join(DROPOUT_FAMILIES)})"
    return f"raise model.options.dropout{where}, e.g. --set model.options.dropout=0.3"


def _patience_fix(run: Run) -> str:
    if stop_reason(run) is StopReason.EARLY_STOPPING:
        return ""  # already on: the best epoch's weights were restored
    return "stop at the best epoch with --set train.patience=3"


def underfitting(run: Run) -> Optional[dict]:
    if not run.accuracy or is_broken(run) or _learning_too_slowly(run) is not None or find_stuck(run):
        return None  # a broken, stalled or stuck run is the learning rate's finding
    reference = next((a for a in reversed(run.val_accuracy) if a is not None), None)
    name = "validation"
    if reference is None:
        reference, name = run.metrics.get("accuracy"), "test"
    acc = run.accuracy[-1]
    # far below validation is regularisation at work (dropout, augmentation), not underfitting
    if reference is None or acc >= UNDERFIT_ACCURACY or abs(acc - reference) > UNDERFIT_GAP:
        return None
    if stop_reason(run) is StopReason.TIME_BUDGET:
        longer = "give it more time: raise train.time_budget (e.g. --set train.time_budget=10m)"
    else:
        longer = f"train longer with --set train.epochs={2 * run.epochs} (now {run.epochs})"
    capacity = (f"widen the model ({CAPACITY_KEY[run.model]})" if run.model in CAPACITY_KEY
                else "widen the model (model.options.channels for cnn, model.options.hidden for mlp)")
    return make_finding("underfitting", "warning",
                        f"Training accuracy {pct(acc)} is low and close to {name} accuracy "
                        f"{pct(reference)}: the model has not fit even the training data (unless the "
                        "labels are that noisy).", f"{longer}; or {capacity}")


# ----------------------------------------------------------------------------- facts

def class_imbalance(run: Run) -> Optional[dict]:
    counts = run.facts.get("class_counts") or {}
    if len(counts) < 2:
        return None
    big, small = max(counts, key=counts.get), min(counts, key=counts.get)
    if counts[small] * IMBALANCE_RATIO >= counts[big]:
        return None
    ratio = f"{counts[big] / counts[small]:.0f}x" if counts[small] else "no examples at all"
    row = (run.metrics.get("per_class") or {}).get(small) or {}
    if row.get("tested") is False:
        tail = "; it has no test examples, so it is not tested"
    else:
        tail = f"; its test recall is {pct(row['recall'])}" if row.get("recall") is not None else ""
    return make_finding("class_imbalance", "warning",
                        f"The training classes are imbalanced: '{big}' has {counted(counts[big], 'example')} and "
                        f"'{small}' {counts[small]} ({ratio}){tail}.",
                        f"add training examples of '{small}', or weigh the classes in the loss with "
                        "--set train.class_weight=auto (a rare class then counts as much as a common "
                        "one), and judge the model by balanced accuracy and per-class recall")


def untested_classes(run: Run) -> Optional[dict]:
    """Classes without test examples: not scored (not 0), and so not known to work."""
    names = run.metrics.get("not_tested") or []
    if not names:
        return None
    shown = ", ".join(f"'{n}'" for n in names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    one = len(names) == 1
    rows = run.metrics.get("per_class") or {}
    wrong = [(n, rows[n]["predicted"]) for n in names if (rows.get(n) or {}).get("predicted")]
    said = "; ".join(f"'{n}' {k} time{'' if k == 1 else 's'}" for n, k in wrong)
    tail = f" The model still predicted {said}, each time wrongly (precision 0)." if wrong else ""
    return make_finding("untested_classes", "warning",
                        f"{len(names)} class{'' if one else 'es'} ({shown}) had no test examples: not "
                        f"tested, so left out of the macro averages; how well the model knows "
                        f"{'it' if one else 'them'} is unknown.{tail}",
                        "add examples of these classes (enough for every split: training, validation "
                        "and test), or evaluate on data that has them with "
                        "'neuroclass evaluate RUN --data DATA'")


def dead_relu(run: Run) -> Optional[dict]:
    dead = run.facts.get("dead_relu") or {}
    if not dead.get("units") or dead.get("fraction", 0.0) <= DEAD_RELU_SHARE:
        return None
    worst = max(dead.get("layers") or [{}], key=lambda l: l.get("dead", 0) / max(1, l.get("units", 1)))
    where = (f"; worst layer '{worst['name']}' with {worst['dead']} of {worst['units']} dead"
             if worst.get("name") else "")
    swap = (f"--set model.options.activation={ACTIVATION_CHOICE[run.model]}" if run.model in ACTIVATION_CHOICE
            else "--set model.init=he")
    # a run stuck at chance gets its (larger) learning-rate cut from that error: one rate to try
    lower = "" if find_stuck(run) else f"{lr_fix(run, 1 / 3, 'lower')}; or "
    return make_finding("dead_relu", "warning",
                        f"{pct(dead['fraction'])} of ReLU units ({dead.get('dead')} of {dead['units']}) "
                        f"never fire on the test sample{where}: that capacity is unused.", f"{lower}{swap}")


def leakage(run: Run) -> Optional[dict]:
    found = run.facts.get("leakage") or {}
    copies = int(found.get("exact", 0)) + int(found.get("near", 0))
    if copies == 0:
        return None
    share, of = _share(run, copies)
    severity = "error" if share > LEAK_ERROR_SHARE else "warning"
    return make_finding("leakage", severity,
                        f"{copies} test examples{of} have a copy in the training split "
                        f"({found.get('exact', 0)} exact, {found.get('near', 0)} near): on them the test "
                        "accuracy measures memory, not generalisation.",
                        "remove the listed duplicates from the training (or test) data and retrain; "
                        "neuroclass has no de-duplication setting")


def _share(run: Run, count: int) -> tuple[float, str]:
    """(count / test size, " (x% of the test split)"); (0, "") when the size is unknown."""
    n = run.metrics.get("n")
    return (count / n, f" ({pct(count / n)} of the test split)") if n else (0.0, "")


def mislabelled(run: Run) -> Optional[dict]:
    found = run.facts.get("mislabelled") or {}
    count = int(found.get("count", 0))
    if count == 0 or find_stuck(run):
        return None  # a model no better than guessing cannot vouch for or against any label
    share, of = _share(run, count)
    severity = "warning" if share > MISLABEL_WARN_SHARE else "info"
    return make_finding("mislabelled", severity,
                        f"{count} test examples{of} look mislabelled: the model is as sure of another "
                        "class as it usually is of that class, and unusually unsure of the given label.",
                        "review the listed examples and correct or drop wrong labels in the data "
                        "source; until then the test accuracy counts them as model errors")


RULES: list[Callable[[Run], Optional[dict]]] = [
    loss_not_finite, loss_exploding, stuck_at_chance, lr_too_high, lr_too_low, overfitting, underfitting,
    class_imbalance, untested_classes, dead_relu, leakage, mislabelled]
