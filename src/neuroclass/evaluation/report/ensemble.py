"""The report of an ensemble folder: the run report's sections that describe data and predictions,
with a members table where a run's report describes one model's training.

An ensemble has no history, curves, temperature, network or training time of its own; its page
shows what it combines instead: each member's path, model, weight and accuracy on the same
evaluation data beside the ensemble's (the point of an ensemble, Dietterich 2000, is to beat its
members). Data, metrics, confusion, mistakes and abstention are computed and drawn exactly as in
a run's report (collect.py, sections.py), from the ensemble's probabilities. report.json holds every
number on the page, with "report" -> "ensemble": true.

Example::

    write_ensemble_report("runs/digits-ensemble-mean-20260101-120000", None,
                          Path("runs/digits-ensemble-mean-20260101-120000/report.html"))
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from neuroclass.errors import counted
from neuroclass.evaluation.evaluate import evaluation_inputs
from neuroclass.evaluation.report import diagnostics, plots
from neuroclass.evaluation.report.collect import (confusion_section, data_section, metrics_section,
                                                  mistakes_section, plain)
from neuroclass.evaluation.report.html import (cards, esc, fmt, key_values, note, page, pct, save_page, section,
                                                table)
from neuroclass.evaluation.report.inputs import ReportInputs
from neuroclass.evaluation.report.pictures import example_images
from neuroclass.evaluation.report import sections
from neuroclass.inference.calibrate import abstention_curve
from neuroclass.inference.ensemble import EnsemblePredictor, describe_members
from neuroclass.runs import RunFolder

EXPLAIN = {
    "summary": "What this ensemble combines, on which data, and how well it does on examples none of "
               "its members trained on.",
    "members": "The runs the ensemble combines, how much each counts, and how well each does alone on "
               "the same evaluation data; an ensemble gains most from members that are good and make "
               "different mistakes.",
    "reproduce": "The command that built the ensemble, and the first member's configuration, whose "
                 "data and split every member shares.",
    "cv": "A k-fold cross-validation: each fold's model validated on the fold it did not train on. The "
          "spread across folds says how much a score depends on which examples happen to be held out.",
}
TITLES = {"summary": "Summary", "members": "Members", "cv": "Cross-validation", "data": "Data", "metrics": "Metrics",
          "confusion": "Confusion", "mistakes": "Mistakes", "abstention": "Abstention",
          "reproduce": "Reproduce"}


def load_ensemble_inputs(run: str | Path, data: str | None = None) -> tuple[ReportInputs, np.ndarray]:
    """The ensemble folder ``run`` ready to report on, evaluated on its test split or on ``data``,
    and its members' probabilities on the evaluation data, float32 (M, N, K). ``eval_logits`` holds
    the log of the ensemble's probabilities; there is no training history, timing or validation
    logits. Raises NeuroclassError for a missing member or data that changed since training."""
    folder = RunFolder.open(run)
    predictor = EnsemblePredictor.from_folder(folder.path)
    environment = folder.environment()
    own = folder.load_data(quiet=True)
    evaluated = evaluation_inputs(folder, predictor, own, data)
    member_proba = predictor.member_probabilities(evaluated.x)
    inputs = ReportInputs(
        run=folder.path, predictor=predictor, cfg=folder.config(), config_text=folder.config_text(),
        environment=environment, timing={}, split_record=folder.split_record(), history=[],
        dataset=own.dataset, indices=own.indices,
        data_hash_matches=True if environment.get("data_hash") else None,
        eval_x=evaluated.x, eval_y=evaluated.y, eval_what=evaluated.what, eval_data=data,
        eval_logits=torch.log(torch.from_numpy(predictor.combine(member_proba))), val_logits=None,
        data_issues=folder.read_data_issues())
    return inputs, member_proba


def collect_ensemble(inputs: ReportInputs, member_proba: np.ndarray) -> dict:
    """report.json of an ensemble: report, summary, members, data, metrics, confusion, mistakes,
    abstention, reproduce (plain JSON)."""
    predictor: EnsemblePredictor = inputs.predictor
    proba = predictor.combine(member_proba)
    y = inputs.eval_y.numpy()
    metrics = metrics_section(y, proba, inputs.classes)
    data = data_section(inputs)
    data["leakage"] = diagnostics.leakage(inputs)
    return plain({
        "report": {"generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "ensemble": True,
                   "run": inputs.run.name, "path": str(inputs.run), "evaluated_on": inputs.eval_what},
        "summary": {"task": f"{'image' if inputs.kind == 'image' else 'table'} classification, "
                            f"{len(inputs.classes)} classes, ensemble of {counted(len(predictor.members), 'run')}",
                    "kind": inputs.kind, "classes": list(inputs.classes), "method": predictor.method,
                    "members": len(predictor.members), "data_source": inputs.cfg.data.source,
                    "data_hash": inputs.environment.get("data_hash"), "data_hash_matches": inputs.data_hash_matches,
                    "split_sizes": inputs.split_record.get("sizes", {}), "evaluated_on": inputs.eval_what,
                    "input_shape": predictor.meta["input_shape"],
                    "headline": {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")}},
        "members": members_section(predictor, member_proba, y),
        "cv": cv_section(inputs.run),
        "data": data,
        "metrics": metrics,
        "confusion": confusion_section(metrics),
        "mistakes": mistakes_section(inputs, proba),
        "abstention": {"curve": abstention_curve(y, proba)},
        "reproduce": {"command": inputs.environment.get("command") or "", "environment": inputs.environment,
                      "config_yaml": inputs.config_text},
    })


def members_section(predictor: EnsemblePredictor, member_proba: np.ndarray, y: np.ndarray) -> dict:
    """Each member's path, model, weight, share of the total weight and accuracy on labels ``y``
    from its probabilities (M, N, K); the method."""
    rows = describe_members(predictor)
    total = sum(predictor.weights)
    for row, proba in zip(rows, member_proba):
        row["share"] = row["weight"] / total
        row["accuracy"] = float((proba.argmax(axis=1) == y).mean()) if len(y) else None
    return {"method": predictor.method, "members": rows}


CV_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")


def cv_section(run: Path) -> dict | None:
    """A cross-validation summary folder's cv.json: each validation metric's mean, standard
    deviation and per-fold values, and the out-of-fold metrics; None for other ensembles."""
    path = Path(run) / "cv.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return {"folds": record["folds"], "metrics": {k: record["metrics"][k] for k in CV_METRICS if k in record["metrics"]},
            "oof": {k: record["oof_metrics"].get(k) for k in CV_METRICS}}


def cross_validation(r: dict, pics: dict) -> str:
    cv = r["cv"]
    folds = cv["folds"]
    rows = [[name, fmt(m["mean"]), fmt(m["std"]), *[fmt(v) for v in m["per_fold"]], fmt(cv["oof"].get(name))]
            for name, m in cv["metrics"].items()]
    headers = ["validation metric", "mean", "std", *[f"fold {i}" for i in range(1, folds + 1)], "out-of-fold"]
    return (table(headers, rows, numeric=set(range(1, folds + 4)))
            + note("out-of-fold: the metric over every training example once, each scored by the fold model "
                   "that did not train on it (oof.npz)"))


def summary(r: dict, pics: dict) -> str:
    s, h = r["summary"], r["summary"]["headline"]
    best = max((m["accuracy"] for m in r["members"]["members"] if m["accuracy"] is not None), default=None)
    top = [(pct(h["accuracy"]), "accuracy"), (pct(h["balanced_accuracy"]), "balanced accuracy"),
           (fmt(h["macro_f1"]), "macro F1"), (fmt(h["log_loss"]), "log loss"),
           (f"{s['members']:,}", "members"), (s["method"], "method"), (pct(best), "best member's accuracy")]
    hash_note = {True: "matches the data loaded now", False: "DIFFERS from the data loaded now",
                 None: "not recorded"}[s["data_hash_matches"]]
    facts = [("task", s["task"]), ("classes", ", ".join(s["classes"])), ("data", s["data_source"]),
             ("content hash (SHA-256)", f"{s['data_hash']} ({hash_note})"),
             ("split sizes", ", ".join(f"{k} {v:,}" for k, v in s["split_sizes"].items())),
             ("evaluated on", s["evaluated_on"]), ("method", s["method"]), ("input shape", s["input_shape"])]
    return cards(top) + key_values(facts)


def members(r: dict, pics: dict) -> str:
    rows = [[m["path"], m["model"], fmt(m["weight"]), pct(m["share"]), fmt(m["accuracy"])]
            for m in r["members"]["members"]]
    rows.append([f"the ensemble ({r['members']['method']})", "", "", "", fmt(r["metrics"]["accuracy"])])
    words = {"mean": "the weighted mean of the members' probabilities",
             "vote": "each member votes for its top class with its weight (ties go to the higher mean probability)",
             "stacking": "a logistic regression fitted on the members' out-of-fold probabilities"}
    return (table(["member", "model", "weight", "share", "accuracy"], rows, numeric={2, 3, 4})
            + note(f"method: {words[r['members']['method']]}; accuracy on {r['report']['evaluated_on']}"))


def reproduce(r: dict, pics: dict) -> str:
    rp = r["reproduce"]
    env = [(k, v) for k, v in rp["environment"].items() if k != "command"]
    return (f"<h3>Command</h3><pre>{esc(rp['command'] or '(not recorded)')}</pre>"
            + "<h3>Environment</h3>" + key_values(env)
            + "<h3>The members' data and split (config.yaml)</h3>"
            + f"<pre class=\"config\">{esc(rp['config_yaml'])}</pre>")


RENDERERS = {"summary": summary, "members": members, "cv": cross_validation, "data": sections.data, "metrics": sections.metrics,
             "confusion": sections.confusion, "mistakes": sections.mistakes,
             "abstention": sections.abstention, "reproduce": reproduce}


def ensemble_pictures(report: dict, inputs: ReportInputs) -> dict:
    """The charts (class balance, confusion, abstention) and, for images, the example pictures."""
    with plots.fonts_for(report["data"]["classes"]):
        pictures = {"balance": plots.class_balance(report["data"]["class_counts"], report["data"]["classes"]),
                    "confusion": plots.confusion_heatmaps(report["confusion"]["counts"],
                                                          report["confusion"]["normalized"],
                                                          report["confusion"]["classes"]),
                    "abstention": plots.abstention(report["abstention"]["curve"])}
    if inputs.kind == "image":
        pictures.update(example_images({**report, "doctor": {}}, inputs))
    return pictures


def write_ensemble_report(run: str | Path, data: str | None, html_path: Path) -> Path:
    """Write the report of the ensemble folder ``run`` (evaluated on its test split, or on
    ``data``) to ``html_path``, report.json beside it; returns ``html_path``. Raises
    NeuroclassError when the folder, a member or the data cannot be read, or the files cannot be written."""
    inputs, member_proba = load_ensemble_inputs(run, data)
    report = collect_ensemble(inputs, member_proba)
    pictures = ensemble_pictures(report, inputs)
    shown = [(anchor, render) for anchor, render in RENDERERS.items() if report.get(anchor) is not None
             or anchor not in report]  # "cv" only for a cross-validation's folder
    parts = [(anchor, TITLES[anchor], section(i, anchor, TITLES[anchor], EXPLAIN.get(anchor) or sections.EXPLAIN[anchor],
                                              render(report, pictures)))
             for i, (anchor, render) in enumerate(shown, start=1)]
    document = page(f"neuroclass report: {inputs.run.name}",
                    f"{report['summary']['task']}; evaluated on {inputs.eval_what}; "
                    f"generated {report['report']['generated']}", parts,
                    f"Made by neuroclass {inputs.environment.get('neuroclass', '')} from {inputs.run}. "
                    f"Every number is in {html_path.with_suffix('.json').name}.")
    return save_page(html_path, report, document)
