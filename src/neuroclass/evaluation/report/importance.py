"""Per-feature importance of a table run: permutation importance on the evaluation data.

Permutation importance (Breiman 2001, "Random Forests", Machine Learning 45; scikit-learn's
``sklearn.inspection.permutation_importance``) shuffles one feature column at a time and measures
how much the accuracy drops: a feature the model relies on costs accuracy when shuffled, one it
ignores costs nothing. It works for every family alike (it needs only predictions), and it measures
the model on examples it never trained on. Correlated features share their importance: shuffling
one leaves the other to carry the information, so both may look unimportant.

The model is the run's Predictor (its model under its inference policy; the temperature does not
change which class wins), seen by scikit-learn through ``PredictorClassifier``; the columns shuffled
are the model's inputs (after a table run's fitted preprocessing: one-hot columns, missing-value
flags), named by model.json's preprocessing["feature_names"]. Its cost, REPEATS passes of the
evaluation rows per feature plus one, is priced from the run's measured test pass (costs.py) and
the analysis is skipped, with a note, when the report's time budget cannot afford it. Images are
not analysed: a pixel is no feature a reader can act on.

Example::

    section = importance_section(load_inputs("runs/penguins-mlp-20260101-120000"))
    section["rows"][0]
    # -> {'feature': 'flipper_length_mm', 'index': 3, 'mean': 0.21, 'std': 0.03}
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from neuroclass.errors import counted
from neuroclass.evaluation.report import plots
from neuroclass.evaluation.report.diagnostics import budgeted, guarded
from neuroclass.evaluation.report.html import chart, fmt, note, table
from neuroclass.evaluation.report.inputs import ReportInputs
from neuroclass.evaluation.report.timebox import TimeBox

REPEATS = 5  # shuffles of each feature column; the std over them is the chart's error bar
TOP = 20  # features on the chart and in the table
SEED = 0
# seconds per value of the evaluation rows, per feature: copying the rows and shuffling a column
COPY_PER_VALUE = 2e-9
IMAGES = ("permutation importance shuffles one feature column at a time and applies to feature rows "
          "(tables); this run's inputs are images")


class PredictorClassifier(ClassifierMixin, BaseEstimator):
    """A trained run's Predictor as scikit-learn sees a fitted classifier: ``predict(x)`` (x: (N, D)
    float rows of the model's inputs, as ReportInputs.eval_x holds them: a table's rows after the
    run's fitted preprocessing) -> int64 (N,) class numbers; ``score`` is accuracy
    (ClassifierMixin). ``fit`` does nothing: the model is trained already."""

    def __init__(self, predictor=None) -> None:
        self.predictor = predictor

    def fit(self, x=None, y=None) -> "PredictorClassifier":
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(len(self.predictor.classes))

    def predict(self, x) -> np.ndarray:
        # model inputs already (a table's rows after the run's fitted preprocessing): the model under
        # the inference policy, as Predictor.predict_logits_tensor runs it once the rows are inputs
        p = self.predictor
        rows = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return p.policy.logits(p.model, rows, p.device, p.batch_size).argmax(dim=1).numpy()


def feature_labels(preprocessing: dict, count: int) -> list[str]:
    """The names of the ``count`` model inputs: model.json's preprocessing["feature_names"] when it
    names them all, else "feature 0", "feature 1", ...

    >>> feature_labels({"feature_names": ["a", "b"]}, 2), feature_labels({}, 2)
    (['a', 'b'], ['feature 0', 'feature 1'])
    """
    names = preprocessing.get("feature_names")
    if names and len(names) == count:
        return [str(n) for n in names]
    return [f"feature {i}" for i in range(count)]


def permutation_ranking(inputs: ReportInputs) -> dict:
    """Permutation importance of every feature on the evaluation rows, the TOP largest first:
    {"rows": [{"feature", "index", "mean", "std"}] (drops in accuracy), "features", "shown",
    "repeats", "scoring", "evaluated_on"}."""
    from sklearn.inspection import permutation_importance

    x = np.ascontiguousarray(inputs.eval_x.numpy(), dtype=np.float32)
    y = inputs.eval_y.numpy()
    found = permutation_importance(PredictorClassifier(inputs.predictor), x, y, scoring="accuracy",
                                   n_repeats=REPEATS, random_state=SEED)
    names = feature_labels(inputs.predictor.meta.get("preprocessing", {}), x.shape[1])
    order = np.argsort(-found.importances_mean, kind="stable")[:TOP]
    # rounded: a mean of exact ties reads 0, not -2e-17 (+ 0.0 turns -0.0 into 0.0)
    rows = [{"feature": names[i], "index": int(i), "mean": round(float(found.importances_mean[i]), 12) + 0.0,
             "std": round(float(found.importances_std[i]), 12) + 0.0} for i in order]
    return {"rows": rows, "features": int(x.shape[1]), "shown": len(rows), "repeats": REPEATS,
            "scoring": "accuracy", "evaluated_on": inputs.eval_what}


def importance_section(inputs: ReportInputs, box: TimeBox | None = None) -> dict:
    """report.json's "importance": the ranking (``permutation_ranking``) for a table run, within
    ``box``'s time (None: no limit); {"skipped": why} for images or when the time budget cannot
    afford it; {"error": ...} when it fails."""
    if inputs.kind != "table":
        return {"skipped": IMAGES}
    return budgeted(box, "importance",
                    lambda n: guarded("permutation importance", lambda: permutation_ranking(inputs)))


@plots.chart
def importance_chart(result: dict):
    """Horizontal bars of the mean drop in accuracy of ``result``'s rows (at least one), the largest
    at the top, with the standard deviation over the repeats as error bars."""
    shown = result["rows"][::-1]
    figure = plots.new_figure(6.0, 0.6 + 0.28 * len(shown))
    ax = figure.add_subplot()
    ax.barh([r["feature"] for r in shown], [r["mean"] for r in shown], xerr=[r["std"] for r in shown],
            capsize=2, color=plots.TRAIN)
    ax.axvline(0.0, color=plots.MUTED, linewidth=0.8)
    ax.set_xlabel(f"drop in accuracy when the feature is shuffled (mean ± std of {result['repeats']})")
    return figure


def importance_html(r: dict, pics: dict) -> str:
    """The page's section from report.json's "importance" and the chart."""
    found = r.get("importance") or {}
    if found.get("skipped"):
        return note(found["skipped"])
    if found.get("error"):
        return note(f"not computed: {found['error']}")
    shown = (f"the {found['shown']} most important of {counted(found['features'], 'feature')}"
             if found["shown"] < found["features"] else
             "the one feature" if found["features"] == 1 else f"all {counted(found['features'], 'feature')}")
    body = chart(pics.get("importance"), "permutation importance per feature")
    body += table(["feature", "drop in accuracy", "std"],
                  [[row["feature"], fmt(row["mean"]), fmt(row["std"])] for row in found["rows"]], {1, 2})
    return body + note(f"{shown}; each column shuffled {found['repeats']} times in {found['evaluated_on']}; "
                       "a negative drop means shuffling the feature helped by chance")
