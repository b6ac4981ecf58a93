import json

import numpy as np
import pytest
from sklearn import metrics as skm

from neuroclass.evaluation.metrics import classification_metrics, format_metrics, most_confused


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 2.0 * np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, proba


def test_every_number_matches_scikit_learn(predictions):
    y, proba = predictions
    pred = proba.argmax(1)
    m = classification_metrics(y, proba, ["a", "b", "c", "d"])
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    p, r, f, s = skm.precision_recall_fscore_support(y, pred)
    for i, name in enumerate("abcd"):
        row = m["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))
    assert "accuracy" in format_metrics(m) and "d" in format_metrics(m)


def test_absent_class_keeps_its_row():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    m = classification_metrics(y, proba, ["x", "y", "z"])
    assert m["per_class"]["z"]["support"] == 0
    assert len(m["confusion_matrix"]) == 3


def _softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _random_predictions(n_classes, n=400, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    return y, _softmax(rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[y])


@pytest.mark.parametrize("n_classes", [2, 3, 4, 10])
def test_new_numbers_match_scikit_learn(n_classes):
    y, proba = _random_predictions(n_classes)
    labels = np.arange(n_classes)
    m = classification_metrics(y, proba, [f"c{i}" for i in labels])
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, proba.argmax(1)))
    expected_ks = [k for k in (1, 3, 5) if k < n_classes]
    assert list(m["top_k_accuracy"]) == [str(k) for k in expected_ks]
    scores = proba[:, 1] if n_classes == 2 else proba
    for k in expected_ks:
        assert m["top_k_accuracy"][str(k)] == pytest.approx(
            skm.top_k_accuracy_score(y, scores, k=k, labels=labels))
    assert m["top_k_accuracy"]["1"] == pytest.approx(m["accuracy"])
    if n_classes == 2:
        expected_auc = skm.roc_auc_score(y, proba[:, 1])
    else:
        expected_auc = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels)
    assert m["roc_auc_ovr_macro"] == pytest.approx(expected_auc)
    assert m["roc_auc_reason"] is None
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=labels))
    assert json.loads(json.dumps(m)) == m  # metrics.json round-trips unchanged
    assert "balanced accuracy" in format_metrics(m)


def test_roc_auc_is_the_macro_over_the_tested_classes_when_a_class_is_absent():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.5, 0.45, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    m = classification_metrics(y, proba, ["x", "y", "z"])
    expected = np.mean([skm.roc_auc_score(y == c, proba[:, c]) for c in (0, 1)])
    assert m["roc_auc_ovr_macro"] == pytest.approx(expected)
    assert "2 tested classes" in m["roc_auc_reason"] and "'z'" in m["roc_auc_reason"]
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, proba.argmax(1)))
    assert "not tested: 'z'" in format_metrics(m)


def test_roc_auc_with_one_tested_class_is_none_with_a_reason():
    y = np.array([0, 0])
    m = classification_metrics(y, np.array([[.5, .3, .2], [.6, .2, .2]]), ["x", "y", "z"])
    assert m["roc_auc_ovr_macro"] is None and "'y', 'z'" in m["roc_auc_reason"]
    assert "n/a" in format_metrics(m)


def test_roc_auc_binary_with_one_class_present_is_none():
    m = classification_metrics(np.array([1, 1]), np.array([[0.3, 0.7], [0.6, 0.4]]), ["neg", "pos"])
    assert m["roc_auc_ovr_macro"] is None and "'neg'" in m["roc_auc_reason"]


def test_most_confused_sorts_off_diagonal_pairs_by_count():
    confusion = np.array([[50, 2, 7, 0],
                          [9, 40, 1, 0],
                          [2, 0, 30, 0],
                          [0, 0, 0, 0]])  # class "d" absent: a zero row must not divide by zero
    pairs = most_confused(confusion, ["a", "b", "c", "d"], n=3)
    assert pairs == [{"true": "b", "predicted": "a", "count": 9, "rate": pytest.approx(9 / 50)},
                     {"true": "a", "predicted": "c", "count": 7, "rate": pytest.approx(7 / 59)},
                     {"true": "a", "predicted": "b", "count": 2, "rate": pytest.approx(2 / 59)}]
    everything = most_confused(confusion, ["a", "b", "c", "d"], n=100)
    assert [p["count"] for p in everything] == [9, 7, 2, 2, 1]  # no diagonal, no empty cells
    assert most_confused(np.diag([3, 4]), ["a", "b"]) == []


def test_most_confused_in_metrics_agrees_with_the_confusion_matrix(predictions):
    y, proba = predictions
    m = classification_metrics(y, proba, ["a", "b", "c", "d"])
    cm = skm.confusion_matrix(y, proba.argmax(1))
    top = m["most_confused"][0]
    i, j = "abcd".index(top["true"]), "abcd".index(top["predicted"])
    assert top["count"] == cm[i, j] == (cm - np.diag(np.diag(cm))).max()
    assert top["rate"] == pytest.approx(cm[i, j] / cm[i].sum())
    assert len(m["most_confused"]) <= 5


def test_a_class_without_test_examples_is_not_tested_and_left_out_of_macro_averages():
    y = np.array([0, 0, 1, 1, 0, 1])
    proba = np.array([[.8, .1, .1], [.6, .3, .1], [.2, .7, .1], [.1, .8, .1], [.3, .6, .1], [.2, .2, .6]])
    m = classification_metrics(y, proba, ["a", "b", "rare"])
    assert m["not_tested"] == ["rare"]
    assert m["per_class"]["rare"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0,
                                      "predicted": 1, "tested": False}  # predicted once, wrongly
    pred = proba.argmax(1)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, labels=[0, 1], average="macro"))
    assert m["macro_f1"] > skm.f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    assert json.loads(json.dumps(m)) == m
    text = format_metrics(m)
    assert "not tested" in text and "rare" in text.splitlines()[-1]


def test_an_untested_class_never_predicted_has_no_precision():
    y = np.array([0, 1, 0, 1])
    proba = np.array([[.8, .1, .1], [.2, .7, .1], [.6, .3, .1], [.3, .6, .1]])
    m = classification_metrics(y, proba, ["a", "b", "rare"])
    assert m["per_class"]["rare"]["precision"] is None and m["per_class"]["rare"]["predicted"] == 0
    assert m["per_class"]["a"]["predicted"] == 2


def test_an_untested_class_predicted_k_times_shows_precision_zero():
    y = np.zeros(10, dtype=int)
    y[5:] = 1
    proba = np.tile([.1, .1, .8], (10, 1))  # "rare" predicted for all 10, each time wrongly
    proba[:3] = [.8, .1, .1]
    m = classification_metrics(y, proba, ["a", "b", "rare"])
    row = m["per_class"]["rare"]
    assert row["precision"] == 0.0 and row["predicted"] == 7 and row["recall"] is None
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, proba.argmax(1), labels=[0, 1], average="macro"))
    line = next(t for t in format_metrics(m).splitlines() if t.startswith("rare"))
    assert "0.0000" in line and "not tested" in line
