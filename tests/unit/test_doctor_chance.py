import math

import pytest

from neuroclass.evaluation.doctor import diagnose
from neuroclass.evaluation.doctor_chance import chance_levels

TWO = ["disc", "star"]
TEN = [f"c{i}" for i in range(10)]
IMAGE = {"kind": "image", "input_shape": [3, 327, 599]}


def metrics(classes, predicted=None, accuracy=0.5):
    """Test metrics; ``predicted`` {class: count} (default: predictions spread like the support)."""
    predicted = predicted or {c: 10 for c in classes}
    return {"accuracy": accuracy, "n": 10 * len(classes),
            "per_class": {c: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 10,
                              "predicted": predicted.get(c, 0)} for c in classes}}


def history(loss, acc, val_acc=None):
    val_acc = val_acc or [None] * len(loss)
    return [{"epoch": i + 1, "loss": loss[i], "accuracy": acc[i],
             "val_loss": None if val_acc[i] is None else 0.7, "val_accuracy": val_acc[i], "lr": 0.004, "time": 10.0 * (i + 1)} for i in range(len(loss))]


def facts(smoothing=0.1, classes=TWO, counts=None, **extra):
    return {"optim": {"name": "adamw", "lr": 0.004}, "model": {"name": "cnn"}, "data": IMAGE,
            "train": {"label_smoothing": smoothing},
            "class_counts": counts or {c: 50 for c in classes}, **extra}


def stuck(findings):
    return next((f for f in findings if f["rule"] == "stuck_at_chance"), None)


# the photo folder run this rule was written for: 2 classes, a CNN from scratch on 3x327x599 images,
# label smoothing 0.1 (metrics.csv as written, rounded to 5 places)
PHOTO_LOSS = [38.883, 3.3786, 0.67558, 0.67341, 0.67044, 0.67452]
PHOTO_ACC = [0.4732, 0.4821, 0.5268, 0.5, 0.5, 0.5]
PHOTO_VAL = [0.5, 0.4667, 0.5, 0.5, 0.5, 0.5]


def test_chance_levels_with_and_without_label_smoothing():
    plain = chance_levels(2, None, None)
    assert plain.uniform == pytest.approx(math.log(2)) and plain.guess == pytest.approx(math.log(2))
    assert plain.floor == 0 and plain.majority == 0.5
    smoothed = chance_levels(10, None, 0.1)
    assert smoothed.guess == pytest.approx(math.log(10))  # smoothed targets still sum to 1
    assert smoothed.floor == pytest.approx(-(0.91 * math.log(0.91) + 9 * 0.01 * math.log(0.01)))
    skewed = chance_levels(2, {"a": 90, "b": 10}, 0.1)  # the best guess is the smoothed shares 0.86 / 0.14
    assert skewed.guess == pytest.approx(-(0.86 * math.log(0.86) + 0.14 * math.log(0.14)))
    assert skewed.majority == 0.9 and skewed.accuracy_bound() == pytest.approx(0.91)


def test_loss_stuck_at_ln_2_is_named_with_its_numbers_and_one_learning_rate():
    findings = diagnose(history([0.75, 0.6935, 0.6931, 0.6933, 0.6932], [0.49, 0.5, 0.5, 0.5, 0.5]),
                        metrics(TWO), facts())
    finding = findings[0]
    assert finding["rule"] == "stuck_at_chance" and finding["severity"] == "error"
    assert "epochs 2-5: 0.694, 0.693, 0.693, 0.693" in finding["finding"]
    assert "ln 2 = 0.693 is the loss of a uniform guess" in finding["finding"]
    assert "0.199 the lowest possible with label smoothing 0.1" in finding["finding"]
    assert "--set optim.lr=0.0004" in finding["fix"]
    assert "--set data.image_size=64 (now 327x599)" in finding["fix"] and "--model resnet" in finding["fix"]
    # the rising losses and the near-chance accuracy are this error's, not three more findings
    assert not {"lr_too_high", "lr_too_low", "underfitting"} & {f["rule"] for f in findings}


def test_loss_stuck_at_ln_10_with_label_smoothing_is_named():
    finding = stuck(diagnose(history([2.9, 2.3031, 2.3027, 2.3029], [0.1, 0.1, 0.1, 0.1]),
                             metrics(TEN, accuracy=0.1), facts(classes=TEN)))
    assert "ln 10 = 2.3 is the loss of a uniform guess over 10 classes" in finding["finding"]
    assert "0.5 the lowest possible with label smoothing 0.1" in finding["finding"]
    assert "the first epoch's loss, 2.9, was above ln 10" in finding["finding"]


def test_with_imbalanced_classes_chance_is_the_loss_of_guessing_the_shares():
    skewed = {"a": 90, "b": 10}  # smoothed guess 0.86 / 0.14: loss 0.405, far below ln 2
    run = history([0.45, 0.406, 0.405, 0.406], [0.9, 0.9, 0.9, 0.9])
    finding = stuck(diagnose(run, metrics(["a", "b"]), facts(counts=skewed)))
    assert "0.405 is the loss of always guessing the class shares (ln 2 = 0.693" in finding["finding"]
    assert "always guessing the largest class scores 90.0%" in finding["finding"]
    assert stuck(diagnose(run, metrics(["a", "b"]), facts(counts=None))) is None  # against ln 2 it learned


def test_the_photo_folder_run_is_named_once_with_the_pretrained_command():
    advice = {"command": "neuroclass train photos --model tv:mobilenet_v3_small --pretrained",
              "weights": "offline: download URL and place it at PATH"}
    dead = {"layers": [{"name": "net.head.3", "units": 128, "dead": 126}], "dead": 126, "units": 240,
            "fraction": 126 / 240}
    run = facts(pretrained=advice, dead_relu=dead, mislabelled={"count": 16, "examples": []})
    findings = diagnose(history(PHOTO_LOSS, PHOTO_ACC, PHOTO_VAL),
                        metrics(TWO, predicted={"disc": 20}, accuracy=0.5), run)
    finding = findings[0]
    assert finding["rule"] == "stuck_at_chance"
    assert "epochs 2-6: 3.38, 0.676, 0.673, 0.67, 0.675" in finding["finding"]
    assert "validation accuracy was 50.0% in each of the last 4 epochs" in finding["finding"]
    assert "predicted 'disc' for all 20 test examples" in finding["finding"]
    offer = f"or start from ImageNet weights: {advice['command']} ({advice['weights']})"
    assert finding["fix"].endswith(offer)
    rules = [f["rule"] for f in findings]
    assert "lr_too_high" not in rules and "mislabelled" not in rules  # a guessing model vouches for no label
    dead_fix = next(f for f in findings if f["rule"] == "dead_relu")["fix"]
    assert "optim.lr" not in dead_fix and "activation=silu" in dead_fix  # one rate to try, the error's


@pytest.mark.parametrize("loss, acc, val_acc, classes", [
    ([0.9, 0.7, 0.62, 0.58, 0.55, 0.53], [0.72, 0.84, 0.88, 0.9, 0.92, 0.93], None, TEN),
    # `neuroclass train digits --epochs 3`: validation accuracy the same twice, but far above chance
    ([1.2565, 0.6639, 0.5815], [0.738, 0.9631, 0.9937], [0.9583, 0.9792, 0.9792], TEN),
    ([0.6, 0.45, 0.35, 0.3], [0.7, 0.82, 0.9, 0.93], [0.75, 0.85, 0.88, 0.9], TWO),  # smoothing floor 0.199
    ([0.69, 0.66, 0.63, 0.6], [0.52, 0.58, 0.63, 0.68], None, TWO),  # slow but learning every epoch
])
def test_a_run_that_learns_is_not_named(loss, acc, val_acc, classes):
    findings = diagnose(history(loss, acc, val_acc), metrics(classes), facts(classes=classes))
    assert stuck(findings) is None


def test_slow_learning_near_chance_stays_the_learning_rate_finding():
    slow = history([2.30, 2.28, 2.26, 2.24], [0.11, 0.13, 0.15, 0.17])  # falls and rises every epoch
    findings = diagnose(slow, metrics(TEN, accuracy=0.17), facts(classes=TEN, optim={"lr": 1e-5}))
    assert [f["rule"] for f in findings] == ["lr_too_low"]
    assert "--set optim.lr=0.0001" in findings[0]["fix"]


def test_one_or_two_epochs_are_not_enough_to_say_the_loss_stayed():
    assert stuck(diagnose(history([0.6932], [0.5]), metrics(TWO), facts())) is None
    two = history([0.75, 0.6932], [0.5, 0.5])
    assert stuck(diagnose(two, metrics(TWO), facts())) is None
    # ... unless the model also gave every test example one class
    assert stuck(diagnose(two, metrics(TWO, predicted={"star": 20}), facts())) is not None
    one_epoch = diagnose(history([0.6932], [0.5]), metrics(TWO, predicted={"star": 20}), facts())
    assert stuck(one_epoch) is None


def test_validation_accuracy_held_at_a_class_share_is_a_collapse():
    # training accuracy above the band (batch statistics in training mode), validation at one class
    run = history([0.7, 0.66, 0.65, 0.65, 0.64], [0.52, 0.6, 0.61, 0.6, 0.62], [0.5, 0.5, 0.5, 0.5, 0.5])
    finding = stuck(diagnose(run, metrics(TWO), facts()))
    assert "validation accuracy was 50.0% in each of the last 4 epochs" in finding["finding"]
    assert "training loss stayed" not in finding["finding"]
    changing = history([0.7, 0.66, 0.65, 0.65, 0.64], [0.52, 0.6, 0.61, 0.6, 0.62],
                       [0.5, 0.5, 0.52, 0.5, 0.53])
    assert stuck(diagnose(changing, metrics(TWO), facts())) is None


def test_a_test_set_of_one_class_is_no_collapse():
    one_class = {"accuracy": 1.0, "n": 20, "per_class": {
        "disc": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 20, "predicted": 20},
        "star": {"precision": None, "recall": None, "f1": None, "support": 0, "predicted": 0,
                 "tested": False}}}
    assert stuck(diagnose(history([0.75, 0.6932], [0.5, 0.5]), one_class, facts())) is None


def test_the_fix_fits_the_data_and_the_model():
    at_chance = history([0.75, 0.6935, 0.6931, 0.6933], [0.49, 0.5, 0.5, 0.5])
    rows = facts(data={"kind": "table", "input_shape": [12]})
    table = stuck(diagnose(at_chance, metrics(TWO), rows))["fix"]
    assert "--label-column" in table and "image_size" not in table and "--model resnet" not in table
    small = facts(data={"kind": "image", "input_shape": [3, 32, 32]}, model={"name": "resnet"})
    fix = stuck(diagnose(at_chance, metrics(TWO), small))["fix"]
    assert "image_size" not in fix and "--model resnet" not in fix and "ImageNet" not in fix
    unknown = stuck(diagnose(at_chance, metrics(TWO), {}))["fix"]
    assert unknown.startswith("lower optim.lr 10-fold (--set optim.lr=<current / 10>)")
    assert "for images, also --set data.image_size=64" in unknown and "for a table" in unknown


def test_a_margin_loss_model_is_judged_by_accuracy_alone():
    # capsnet's margin loss is far below ln 2 even when it guesses; its accuracy still tells
    run = history([0.3, 0.2, 0.2, 0.2], [0.5, 0.5, 0.5, 0.5])
    assert stuck(diagnose(run, metrics(TWO), facts(model={"name": "capsnet"}))) is not None
    assert stuck(diagnose(run, metrics(TWO), facts())) is None  # cross-entropy 0.2 is no guess


def test_a_long_run_lists_the_first_and_last_losses():
    loss = [0.8] + [0.6932 + 0.0001 * (i % 2) for i in range(19)]
    finding = stuck(diagnose(history(loss, [0.5] * 20), metrics(TWO), facts()))["finding"]
    assert "epochs 2-20: 0.693, 0.693, 0.693, ..., 0.693, 0.693;" in finding
