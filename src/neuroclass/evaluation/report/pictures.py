"""Every picture of the page, drawn from report.json's numbers (charts) and the run's inputs
(example images), as data URIs keyed by name.

Example::

    pictures = draw_pictures(report, inputs)
    sorted(pictures)[:3]
    # -> ['abstention', 'balance', 'calibration']
"""
from __future__ import annotations

from neuroclass.evaluation.report import plots
from neuroclass.evaluation.report.importance import importance_chart
from neuroclass.evaluation.report.inputs import ReportInputs
from neuroclass.evaluation.report.timebox import SKIP, TimeBox


def draw_pictures(report: dict, inputs: ReportInputs, box: TimeBox | None = None) -> dict:
    """Chart and example-image URIs; a section without data has no entry, nor does a part that
    ``box`` (timebox.py; None: no limit) leaves no time for: "charts", "example_pictures"."""
    pictures = {}
    if box is None or box.decide("charts").run != SKIP:
        with plots.fonts_for(report["data"]["classes"]):  # class names in any script
            pictures.update(charts(report, inputs))
    if inputs.kind == "image" and (box is None or box.decide("example_pictures").run != SKIP):
        pictures.update(example_images(report, inputs))
    for name in ("charts", "example_pictures") if box is not None else ():
        box.done(name)
    return pictures


def hold_time(box: TimeBox, kind: str) -> None:
    """Decide the charts and pictures of examples at the report's start, so that the parts
    before them hold back their time (they are drawn last, and come first in priority)."""
    box.decide("charts")
    if kind == "image":
        box.decide("example_pictures")


def charts(report: dict, inputs: ReportInputs) -> dict:
    """The charts of ``draw_pictures``, drawn with the fonts already chosen."""
    data, confusion, calibration = report["data"], report["confusion"], report["calibration"]
    pictures = {
        "balance": plots.class_balance(data["class_counts"], data["classes"]),
        "confusion": plots.confusion_heatmaps(confusion["counts"], confusion["normalized"],
                                              confusion["classes"]),
        "calibration": plots.reliability(calibration["reliability_before"],
                                         calibration["reliability_after"], calibration["ece_before"],
                                         calibration["ece_after"], calibration["temperature"]),
        "abstention": plots.abstention(report["abstention"]["curve"]),
    }
    history = report["training"]["history"]
    if report["training"].get("classical"):  # fitted by rounds: validation curves only
        if len(history) > 1:
            pictures["training"] = plots.round_curves(history, report["training"]["best_epoch"])
    elif history:
        pictures["training"] = plots.training_curves(history, report["training"]["best_epoch"])
    robustness = report["robustness"]
    if inputs.kind == "image" and not robustness.get("error") and not robustness.get("skipped"):
        pictures["robustness"] = plots.robustness(robustness)
    if (report.get("importance") or {}).get("rows"):
        pictures["importance"] = importance_chart(report["importance"])
    return pictures


def dataset_images(inputs: ReportInputs, indices: list[int], max_side: int = 64) -> list[str]:
    """Small PNG URIs of the run's own examples at ``indices``."""
    x = inputs.dataset.x
    return [plots.image_uri(x[int(i)].numpy(), max_side) for i in indices]


def example_images(report: dict, inputs: ReportInputs) -> dict:
    """Sample grid (per class), mistakes gallery, duplicate pairs, likely mislabelled examples."""
    out = {"samples": {name: dataset_images(inputs, indices)
                       for name, indices in report["data"].get("samples", {}).items()}}
    out["mistakes"] = [plots.image_uri(inputs.eval_x[e["index"]].numpy(), 112)
                       for e in report["mistakes"]["examples"]]
    leakage = report["data"]["leakage"]
    if not leakage.get("error") and not leakage.get("skipped"):
        train = inputs.indices["train"]
        out["leakage"] = [(plots.image_uri(inputs.dataset.x[int(train[p["train"]])].numpy(), 112),
                           plots.image_uri(inputs.eval_x[int(p["test"])].numpy(), 112))
                          for p in leakage.get("pairs", [])]
    wrong_labels = report["doctor"].get("mislabelled") or {}
    if not wrong_labels.get("error") and not wrong_labels.get("skipped"):
        out["mislabelled"] = [plots.image_uri(inputs.eval_x[e["index"]].numpy(), 112)
                              for e in wrong_labels.get("examples", [])]
    return out
