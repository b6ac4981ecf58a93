"""Classification metrics from labels and probabilities: pure functions over scikit-learn's."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm

from neuroclass.text_width import display_width, pad

TOP_K = (1, 3, 5)  # reported only where k < number of classes: top-K of K classes is always 1.0


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, balanced accuracy, top-k accuracy, one-vs-rest ROC-AUC, per-class
    precision/recall/F1/support, macro and weighted F1, confusion matrix, the most confused pairs,
    log loss. ``proba`` is (N, K) with rows summing to 1. Every value is plain JSON.

    A class with no example in ``y_true`` is not tested: its recall and F1 are None with
    ``"tested": False``, it is listed in ``"not_tested"``, and macro averages and the macro ROC-AUC
    leave it out (a model is not scored 0 on a class nobody asked it about). Its precision is still
    reported, 0.0, when the model predicted it (every such prediction is wrong), and None otherwise;
    each row's ``"predicted"`` counts the predictions of that class.

    >>> m = classification_metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"])
    >>> m["accuracy"], m["top_k_accuracy"], m["roc_auc_ovr_macro"]
    (1.0, {'1': 1.0}, 1.0)
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 softmax rows sum to 1 only roughly
    labels = np.arange(len(classes))
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    tested = labels[support > 0]  # a class without examples here is not tested, not scored 0
    confusion = skm.confusion_matrix(y_true, y_pred, labels=labels)
    predicted = confusion.sum(axis=0)
    per_class = {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                        "f1": float(f1[i]), "support": int(support[i]), "predicted": int(predicted[i]),
                        "tested": True}
                 if support[i] else {"precision": 0.0 if predicted[i] else None, "recall": None,
                                     "f1": None, "support": 0, "predicted": int(predicted[i]),
                                     "tested": False}
                 for i, name in enumerate(classes)}
    auc, auc_reason = roc_auc_ovr_macro(y_true, proba, classes)
    return {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "top_k_accuracy": top_k_accuracy(y_true, proba),
        "roc_auc_ovr_macro": auc,
        "roc_auc_reason": auc_reason,
        "macro_f1": float(skm.f1_score(y_true, y_pred, labels=tested, average="macro", zero_division=0)),
        "weighted_f1": float(skm.f1_score(y_true, y_pred, labels=labels, average="weighted",
                                          zero_division=0)),
        "log_loss": float(skm.log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=labels)),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "most_confused": most_confused(confusion, classes),
        "classes": list(classes),
        "not_tested": [classes[i] for i in labels if not support[i]],
    }


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (scikit-learn's definition).

    >>> balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]))
    0.5
    """
    with warnings.catch_warnings():
        # A class predicted but absent from y_true has no recall; leaving it out is the definition,
        # not a problem worth a warning in every report on a small test split.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        # one class in y_true and y_pred: recall 1.0 or 0.0 is still the answer; the warning is
        # about a confusion matrix this function does not return
        warnings.filterwarnings("ignore", message="A single label was found")
        return float(skm.balanced_accuracy_score(y_true, y_pred))


def top_k_accuracy(y_true: np.ndarray, proba: np.ndarray, ks: tuple[int, ...] = TOP_K) -> dict:
    """{"k": fraction whose true class is among the k most probable} for each k < K; keys are
    strings so that the dict survives a JSON round trip unchanged.

    >>> top_k_accuracy(np.array([0, 2]), np.array([[.5, .3, .1, .1], [.4, .3, .2, .1]]))
    {'1': 0.5, '3': 1.0}
    """
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    # scikit-learn wants the positive-class score alone when there are two classes
    scores = proba[:, 1] if n_classes == 2 else proba
    return {str(k): float(skm.top_k_accuracy_score(y_true, scores, k=k, labels=labels))
            for k in ks if k < n_classes}


def roc_auc_ovr_macro(y_true: np.ndarray, proba: np.ndarray,
                      classes: list[str]) -> tuple[float | None, str | None]:
    """(macro one-vs-rest ROC-AUC, note): the mean over the tested classes (those with examples in
    ``y_true``) of each one's ROC-AUC against all other examples, scored by its column of ``proba``
    (N, K) -- scikit-learn's ``multi_class="ovr", average="macro"`` when every class is tested. A
    class without examples has no positives and so no curve: it is left out, like the other macro
    averages, and the note names it. With fewer than two tested classes the AUC is undefined:
    (None, why).

    >>> roc_auc_ovr_macro(np.array([0, 0]), np.array([[.9, .1], [.6, .4]]), ["a", "b"])
    (None, "ROC-AUC undefined: no examples of class 'b' in y_true")
    >>> roc_auc_ovr_macro(np.array([0, 1]), np.array([[.8, .1, .1], [.2, .7, .1]]), ["a", "b", "c"])
    (1.0, "over the 2 tested classes; not tested: 'c'")
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if len(classes) < 2:
        return None, "ROC-AUC undefined: fewer than two classes"
    tested = [i for i in range(len(classes)) if np.any(y_true == i)]
    absent = ", ".join(repr(classes[i]) for i in range(len(classes)) if i not in tested)
    if len(tested) < 2:
        return None, f"ROC-AUC undefined: no examples of class {absent} in y_true"
    if len(classes) == 2:
        return float(skm.roc_auc_score(y_true, proba[:, 1])), None
    auc = float(np.mean([skm.roc_auc_score(y_true == i, proba[:, i]) for i in tested]))
    return auc, (f"over the {len(tested)} tested classes; not tested: {absent}" if absent else None)


def most_confused(confusion, classes: list[str], n: int = 5) -> list[dict]:
    """The ``n`` largest off-diagonal cells of a confusion matrix (rows true, columns predicted),
    largest count first; ``rate`` is the count over the true class's support. Empty cells are left out.

    >>> most_confused([[5, 3], [1, 4]], ["cat", "dog"])[0]
    {'true': 'cat', 'predicted': 'dog', 'count': 3, 'rate': 0.375}
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    support = confusion.sum(axis=1)
    pairs = [(int(confusion[i, j]), i, j) for i in range(len(classes)) for j in range(len(classes))
             if i != j and confusion[i, j] > 0]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))  # ties in reading order, so output is stable
    return [{"true": classes[i], "predicted": classes[j], "count": count,
             "rate": float(count / support[i])} for count, i, j in pairs[:n]]


def format_metrics(m: dict) -> str:
    """A plain-text table for the terminal: ``print(format_metrics(classification_metrics(...)))``."""
    width = max(12, max(display_width(c) for c in m["classes"]) + 2)  # a CJK character: 2 columns
    lines = [f"accuracy {m['accuracy']:.4f}  macro F1 {m['macro_f1']:.4f}  "
             f"weighted F1 {m['weighted_f1']:.4f}  log loss {m['log_loss']:.4f}  (n={m['n']})"]
    top_k = "  ".join(f"top-{k} {v:.4f}" for k, v in m["top_k_accuracy"].items())
    auc = (f"{m['roc_auc_ovr_macro']:.4f}" if m["roc_auc_ovr_macro"] is not None
           else f"n/a ({m['roc_auc_reason']})")
    if m["roc_auc_ovr_macro"] is not None and m.get("roc_auc_reason"):
        auc += f" ({m['roc_auc_reason']})"
    lines.append(f"balanced accuracy {m['balanced_accuracy']:.4f}  {top_k}  ROC-AUC (OvR macro) {auc}")
    lines.append(f"{pad('class', width)}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, row in m["per_class"].items():
        if row.get("tested", True):
            lines.append(f"{pad(name, width)}{row['precision']:>10.4f}{row['recall']:>10.4f}"
                         f"{row['f1']:>10.4f}{row['support']:>10d}")
        elif row["precision"] is not None:  # predicted, though it has no examples: all wrong
            lines.append(f"{pad(name, width)}{row['precision']:>10.4f}{'not tested (no examples)':>20}"
                         f"{row['support']:>10d}")
        else:
            lines.append(f"{pad(name, width)}{'not tested (no examples)':>30}{row['support']:>10d}")
    if m.get("not_tested"):
        lines.append(f"not tested (left out of macro averages): {', '.join(m['not_tested'])}")
    return "\n".join(lines)
