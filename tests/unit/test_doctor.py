import json
import math

import pytest

from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.doctor import RULES, diagnose

CLASSES = [f"c{i}" for i in range(10)]
METRICS = {"accuracy": 0.9, "n": 1000,
           "per_class": {c: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 100} for c in CLASSES}}
FACTS = {"optim": {"name": "adamw", "lr": 0.004, "schedule": "onecycle", "weight_decay": 5e-4},
         "epochs": 6, "stop_reason": "completed", "class_counts": {c: 600 for c in CLASSES},
         "dead_relu": {"layers": [{"name": "net.features.2", "units": 16, "dead": 1}], "dead": 1,
                       "units": 16, "fraction": 1 / 16},
         "leakage": {"exact": 0, "near": 0, "pairs": [], "method": "..."},
         "mislabelled": {"count": 0, "examples": [], "method": "..."}}


def history(loss, acc, val_loss=None, val_acc=None):
    n = len(loss)
    val_loss, val_acc = val_loss or [None] * n, val_acc or [None] * n
    return [{"epoch": i + 1, "loss": loss[i], "accuracy": acc[i], "val_loss": val_loss[i],
             "val_accuracy": val_acc[i], "lr": 0.004, "time": 10.0 * (i + 1)} for i in range(n)]


HEALTHY = history([0.9, 0.7, 0.62, 0.58, 0.55, 0.53], [0.72, 0.84, 0.88, 0.9, 0.92, 0.93],
                  [0.75, 0.65, 0.6, 0.57, 0.56, 0.555], [0.8, 0.86, 0.88, 0.9, 0.91, 0.91])


def rules(findings):
    return {f["rule"] for f in findings}


def with_facts(**changes):
    return {**FACTS, **changes}


def test_a_healthy_run_gets_only_the_ok_finding():
    findings = diagnose(HEALTHY, METRICS, FACTS)
    assert [(f["rule"], f["severity"]) for f in findings] == [("ok", "info")]
    assert json.loads(json.dumps(findings)) == findings
    checked = "(loss and learning rate, fit, class balance, dead units, leakage, labels)"
    assert checked in findings[0]["finding"]
    bare = diagnose(HEALTHY, METRICS, {})  # facts are optional; the finding says what was checked
    assert bare[0]["rule"] == "ok" and "(loss and learning rate, fit)" in bare[0]["finding"]


def test_nan_loss_is_an_error_with_a_lower_learning_rate():
    bad = history([0.9, 0.7, math.nan], [0.7, 0.8, 0.1])
    finding = next(f for f in diagnose(bad, METRICS, FACTS) if f["rule"] == "loss_not_finite")
    assert finding["severity"] == "error" and "epoch 3" in finding["finding"]
    assert "--set optim.lr=0.0004" in finding["fix"]
    from_csv = [{k: "" if v is None else str(v) for k, v in row.items()} for row in bad]  # as csv.DictReader
    assert "loss_not_finite" in rules(diagnose(from_csv, METRICS, FACTS))
    guard = with_facts(stop_reason="diverged", stop_detail="loss became nan at epoch 2, step 90")
    finding = next(f for f in diagnose(HEALTHY[:1], METRICS, guard) if f["rule"] == "loss_not_finite")
    assert "(loss became nan at epoch 2, step 90)" in finding["finding"]
    # the reason is read from its StopReason value, never from the words
    words_only = with_facts(stop_reason="completed", stop_detail="loss became nan at epoch 2, step 90")
    assert "loss_not_finite" not in rules(diagnose(HEALTHY[:1], METRICS, words_only))


def test_exploding_loss_is_an_error_first_in_the_list():
    bad = history([0.9, 0.5, 0.6, 1.4], [0.7, 0.85, 0.8, 0.4])
    findings = diagnose(bad, METRICS, with_facts(optim={"lr": 0.5}))
    assert findings[0]["rule"] == "loss_exploding" and findings[0]["severity"] == "error"
    assert "0.5 (epoch 2) to 1.4 (epoch 4)" in findings[0]["finding"]
    assert "lr_too_high" not in rules(findings)  # the error already says it


def test_learning_rate_too_high_from_the_first_epoch_or_oscillation():
    above_chance = history([2.6, 2.2, 1.9], [0.15, 0.3, 0.4])  # ln 10 = 2.30
    finding = next(f for f in diagnose(above_chance, METRICS, FACTS) if f["rule"] == "lr_too_high")
    assert "2.6" in finding["finding"] and "optim.lr=0.00133" in finding["fix"]
    wobbly = history([0.9, 0.8, 0.85, 0.7, 0.75, 0.65], [0.7, 0.75, 0.74, 0.8, 0.78, 0.82])
    assert "lr_too_high" in rules(diagnose(wobbly, METRICS, FACTS))


def test_learning_rate_too_low_when_accuracy_stays_near_chance():
    slow = history([2.30, 2.28, 2.26, 2.24], [0.11, 0.13, 0.15, 0.17])
    findings = diagnose(slow, METRICS, with_facts(optim={"lr": 1e-5}))
    finding = next(f for f in findings if f["rule"] == "lr_too_low")
    assert "near chance (10.0%)" in finding["finding"] and "--set optim.lr=0.0001" in finding["fix"]
    assert "underfitting" not in rules(findings)
    crawling = history([1.0, 0.98, 0.96, 0.95], [0.6, 0.61, 0.62, 0.63])  # far from chance, barely moving
    finding = next(f for f in diagnose(crawling, METRICS, FACTS) if f["rule"] == "lr_too_low")
    assert "fell only 5% (1 to 0.95)" in finding["finding"]
    assert "lr_too_low" not in rules(diagnose(HEALTHY, METRICS, FACTS))


def test_overfitting_when_the_gap_grows_and_validation_loss_rises():
    over = history([0.8, 0.5, 0.3, 0.2, 0.1], [0.75, 0.85, 0.92, 0.96, 0.99],
                   [0.6, 0.45, 0.42, 0.48, 0.6], [0.8, 0.86, 0.88, 0.88, 0.87])
    facts = with_facts(model={"name": "cnn", "options": {"dropout": 0.1}})
    finding = next(f for f in diagnose(over, METRICS, facts) if f["rule"] == "overfitting")
    assert "12.0 points" in finding["finding"] and "0.42 (epoch 3)" in finding["finding"]
    for setting in ("augment.enabled=true", "optim.weight_decay=0.0025", "model.options.dropout=0.3",
                    "train.patience=3"):
        assert setting in finding["fix"]
    same_gap_falling_loss = history([0.8, 0.5, 0.3], [0.8, 0.9, 0.99], [0.6, 0.5, 0.45], [0.8, 0.85, 0.9])
    assert "overfitting" not in rules(diagnose(same_gap_falling_loss, METRICS, FACTS))
    stopped_early = with_facts(stop_reason="early_stopping", model=facts["model"])
    fix = next(f for f in diagnose(over, METRICS, stopped_early) if f["rule"] == "overfitting")["fix"]
    assert "train.patience" not in fix  # already on: the best epoch's weights were restored


def test_underfitting_when_training_accuracy_is_low_and_close_to_validation():
    under = history([1.2, 1.0, 0.9, 0.85], [0.55, 0.62, 0.66, 0.68], [1.1, 0.95, 0.9, 0.86],
                    [0.6, 0.64, 0.67, 0.68])
    finding = next(f for f in diagnose(under, METRICS, with_facts(model={"name": "mlp"}))
                   if f["rule"] == "underfitting")
    assert "68.0%" in finding["finding"]
    assert "train.epochs=12 (now 6)" in finding["fix"] and "model.options.hidden" in finding["fix"]
    regularised = history([1.2, 1.0, 0.9, 0.85], [0.55, 0.62, 0.66, 0.68], [0.5, 0.4, 0.35, 0.3],
                          [0.8, 0.85, 0.87, 0.88])  # dropout and augmentation lower train accuracy
    assert "underfitting" not in rules(diagnose(regularised, METRICS, FACTS))
    budget = diagnose(under, METRICS, with_facts(stop_reason="time_budget"))
    assert "train.time_budget" in next(f for f in budget if f["rule"] == "underfitting")["fix"]
    # a run folder from before stop reasons were an enum: its words are not matched
    legacy = diagnose(under, METRICS, with_facts(stop_reason="time budget reached"))
    assert "train.epochs=12" in next(f for f in legacy if f["rule"] == "underfitting")["fix"]


def test_class_imbalance_names_the_classes_and_the_rare_class_recall():
    counts = {**FACTS["class_counts"], "c3": 100}
    finding = next(f for f in diagnose(HEALTHY, METRICS, with_facts(class_counts=counts))
                   if f["rule"] == "class_imbalance")
    assert "'c3' 100 (6x)" in finding["finding"] and "recall is 90.0%" in finding["finding"]
    mild = {**FACTS["class_counts"], "c3": 250}
    assert "class_imbalance" not in rules(diagnose(HEALTHY, METRICS, with_facts(class_counts=mild)))


def test_a_class_without_test_examples_is_not_tested_not_zero_recall():
    per_class = {**METRICS["per_class"],
                 "c9": {"precision": None, "recall": None, "f1": None, "support": 0, "tested": False}}
    metrics = {**METRICS, "per_class": per_class, "not_tested": ["c9"]}
    counts = {**FACTS["class_counts"], "c9": 1}
    findings = diagnose(HEALTHY, metrics, with_facts(class_counts=counts))
    imbalance = next(f for f in findings if f["rule"] == "class_imbalance")
    assert "not tested" in imbalance["finding"] and "recall" not in imbalance["finding"]
    untested = next(f for f in findings if f["rule"] == "untested_classes")
    assert untested["severity"] == "warning" and "'c9'" in untested["finding"]
    assert "untested_classes" not in rules(diagnose(HEALTHY, METRICS, FACTS))
    assert "predicted" not in untested["finding"]


def test_an_untested_class_the_model_predicts_is_named_with_its_wrong_predictions():
    per_class = {**METRICS["per_class"],
                 "c9": {"precision": 0.0, "recall": None, "f1": None, "support": 0, "predicted": 7,
                        "tested": False}}
    metrics = {**METRICS, "per_class": per_class, "not_tested": ["c9"]}
    untested = next(f for f in diagnose(HEALTHY, metrics, FACTS) if f["rule"] == "untested_classes")
    assert "predicted 'c9' 7 times, each time wrongly" in untested["finding"]


def test_dead_relu_above_a_fifth_of_the_units():
    dead = {"layers": [{"name": "a", "units": 16, "dead": 2}, {"name": "b", "units": 16, "dead": 10}],
            "dead": 12, "units": 32, "fraction": 12 / 32}
    finding = next(f for f in diagnose(HEALTHY, METRICS, with_facts(dead_relu=dead, model={"name": "cnn"}))
                   if f["rule"] == "dead_relu")
    assert "37.5%" in finding["finding"] and "'b' with 10 of 16" in finding["finding"]
    assert "model.options.activation=silu" in finding["fix"] and "optim.lr=0.00133" in finding["fix"]


def test_leakage_warning_and_error_by_share_of_the_test_split():
    few = diagnose(HEALTHY, METRICS, with_facts(leakage={"exact": 2, "near": 3}))
    finding = next(f for f in few if f["rule"] == "leakage")
    assert finding["severity"] == "warning" and "5 test examples (0.5% of" in finding["finding"]
    many = diagnose(HEALTHY, METRICS, with_facts(leakage={"exact": 20, "near": 0}))
    assert many[0]["rule"] == "leakage" and many[0]["severity"] == "error"


def test_mislabelled_examples_are_reported():
    findings = diagnose(HEALTHY, METRICS, with_facts(mislabelled={"count": 12, "examples": []}))
    finding = next(f for f in findings if f["rule"] == "mislabelled")
    assert finding["severity"] == "info" and "12 test examples (1.2% of the test split)" in finding["finding"]
    assert "ok" not in rules(findings)


def test_every_rule_has_a_test_and_every_fix_names_real_config_keys():
    """Each --set key in any fix must load: a fix that names a missing setting misleads."""
    CNN = {"name": "cnn"}
    crafted = [
        (history([0.9, math.nan], [0.7, 0.1]), {"optim": {"lr": 0.1, "schedule": "constant"}}),
        (history([2.6, 2.2, 1.9], [0.15, 0.3, 0.4]), {}),
        (history([2.30, 2.28, 2.26, 2.24], [0.11, 0.13, 0.15, 0.17]), {}),
        (history([0.8, 0.3, 0.1], [0.7, 0.9, 0.99], [0.6, 0.4, 0.6], [0.8, 0.86, 0.87]), {"model": CNN}),
        (history([1.2, 1.0, 0.9], [0.55, 0.62, 0.66], [1.1, 0.95, 0.9], [0.6, 0.64, 0.67]), {"model": CNN}),
        (history([2.4, 2.303, 2.302, 2.303], [0.1, 0.1, 0.1, 0.1]),  # stuck at chance: ln 10
         {"model": CNN, "data": {"kind": "image", "input_shape": [3, 256, 256]}}),
    ]
    fixes = " ".join(f["fix"] for h, extra in crafted for f in diagnose(h, METRICS, with_facts(**extra)))
    keys = {word.split("=")[0] for word in fixes.split() if "=" in word and "." in word.split("=")[0]}
    assert {"optim.lr", "optim.weight_decay", "augment.enabled", "model.options.dropout", "train.patience",
            "train.epochs", "optim.schedule", "data.image_size"} <= keys
    for key in keys - {"optim.lr"}:  # optim.lr=<current / 10> is a template when the rate is unknown
        value = {"model.options.dropout": "0.3", "optim.schedule": "onecycle"}.get(key, "1")
        if key.startswith("model.options."):
            from neuroclass.models import resolve
            resolve("cnn", {key.split(".")[-1]: 0.3 if key.endswith("dropout") else [8]})
        else:
            load_config(overrides=[f"{key}={value}" if key != "augment.enabled" else f"{key}=true"])
    assert len(RULES) == 12


@pytest.mark.parametrize("args, match", [
    (("history", METRICS, FACTS), "list of dicts"),
    ((HEALTHY, [], FACTS), "dicts"),
    (([{"loss": "abc", "accuracy": 0.5}], METRICS, FACTS), "must be a number"),
    (([{"loss": 0.5}], METRICS, FACTS), "training loss and accuracy"),
    ((HEALTHY, METRICS, {"leakage": 3}), "facts\\['leakage'\\]"),
    ((HEALTHY, METRICS, {"train": {"label_smoothing": 1.5}}), "label_smoothing"),
    ((HEALTHY, METRICS, {"data": {"input_shape": "3x64x64"}}), "input_shape"),
])
def test_bad_input_raises_one_clear_error(args, match):
    with pytest.raises(NeuroclassError, match=match):
        diagnose(*args)
