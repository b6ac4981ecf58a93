"""The twelve sections of the page, each from report.json's numbers and the pictures.

Each renderer returns (anchor, title, html); SECTIONS lists them in page order with the one
sentence that tells a reader what the section shows and why it matters.

Example::

    anchor, title, body = render_sections(report, pictures)[0]
    anchor
    # -> 'summary'
"""
from __future__ import annotations

import json
import shlex

from neuroclass.errors import counted
from neuroclass.evaluation.report.html import (cards, chart, esc, example, fmt, key_values, note, pct,
                                               section, table)
from neuroclass.evaluation.report.columns import columns_html
from neuroclass.evaluation.report.data_quality import data_issues, leakage
from neuroclass.evaluation.report.importance import importance_html
from neuroclass.training.state import StopReason, read_stop_reason

# how training ended, where the run recorded no words for it
STOPPED = {StopReason.COMPLETED: "ran all planned epochs", StopReason.TIME_BUDGET: "time budget reached",
           StopReason.EARLY_STOPPING: "early stopping", StopReason.DIVERGED: "the loss diverged",
           StopReason.TARGET_REACHED: "target accuracy reached",
           StopReason.TARGET_NOT_REACHED: "target accuracy not reached in time"}

EXPLAIN = {
    "summary": "What was trained, on which data, and how well it does on examples it never saw "
               "during training.",
    "data": "How many examples each class has in each split, what they look like, and whether test "
            "examples also appear in the training data, which would make the test score look better "
            "than it is.",
    "training": "How loss and accuracy changed epoch by epoch on the training and validation data; "
                "a widening gap between the two means the model memorises instead of generalising.",
    "metrics": "How often the model is right, overall and per class, on the evaluation data; every "
               "number equals scikit-learn's on the same predictions.",
    "confusion": "Which classes the model mixes up: each row is a true class and each column the "
                 "predicted one, so everything off the diagonal is an error.",
    "mistakes": "The evaluation examples the model got most confidently wrong; they often show "
                "ambiguous classes or wrong labels.",
    "calibration": "Whether a probability of 80% really means right 80% of the time; temperature "
                   "scaling, fitted on the validation split, corrects over- or under-confidence "
                   "without changing any prediction.",
    "abstention": "How accuracy rises when the model may answer \"not sure\" below a confidence "
                  "threshold, and what fraction of examples it still answers.",
    "robustness": "How accuracy falls as images are degraded by noise, rotation, blur or brightness "
                  "changes, and whether averaging over flipped copies (test-time augmentation) helps.",
    "importance": "Which input features the model relies on: how much the accuracy drops when one "
                  "feature's values are shuffled among the evaluation rows (permutation importance).",
    "doctor": "Automatic checks of the run for common problems, each with the setting to change.",
    "reproduce": "Everything needed to train this model again: the resolved configuration, the "
                 "software environment, the seed and the exact command.",
}
TITLES = {"summary": "Summary", "data": "Data", "training": "Training", "metrics": "Metrics",
          "confusion": "Confusion", "mistakes": "Mistakes", "calibration": "Calibration",
          "abstention": "Abstention", "robustness": "Robustness", "importance": "Feature importance",
          "doctor": "Doctor",
          "reproduce": "Reproduce"}


def summary(r: dict, pics: dict) -> str:
    s = r["summary"]
    h = s["headline"]
    top = [(pct(h["accuracy"]), "accuracy"), (pct(h["balanced_accuracy"]), "balanced accuracy"),
           (fmt(h["macro_f1"]), "macro F1"), (fmt(h["log_loss"]), "log loss"),
           *_size_cards(s)]
    sizes = ", ".join(f"{k} {v:,}" for k, v in s["split_sizes"].items())
    hash_note = {True: "matches the data loaded now", False: "DIFFERS from the data loaded now",
                 None: "not recorded"}[s["data_hash_matches"]]
    facts = [("task", s["task"]), ("classes", ", ".join(s["classes"])), ("data", s["data_source"]),
             ("content hash (SHA-256)", f"{s['data_hash']} ({hash_note})"), ("split sizes", sizes),
             ("evaluated on", s["evaluated_on"]), ("model", s["model_family"]),
             ("model options", json.dumps(s["model_options"])), ("input shape", s["input_shape"]),
             ("rounds" if s.get("classical") else "epochs", s["epochs"]), ("temperature", fmt(s["temperature"])),
             ("test-time augmentation", s["tta"]),
             ("inference examples/s", fmt(s["inference_examples_per_second"], 0))]
    return cards(top) + budget_note(r) + key_values(facts)


def _size_cards(s: dict) -> list[tuple[str, str]]:
    """Cards of the model's size and training cost: parameters, FLOPs and training speed for a
    network; the model file's size, rounds and fitting time for a classical family."""
    if s.get("classical"):
        size = s.get("model_file_bytes")
        return [(f"{size / 1e6:,.2f} MB" if size is not None else "unknown", "model file"),
                (str(s["classical"].get("rounds") or "-"), "rounds"),
                (f"{fmt(s['train_seconds'], 1)} s", "fitting time")]
    return [(f"{s['parameters']:,}", "parameters"), (f"{s['flops_per_example'] / 1e6:,.2f} M", "FLOPs per example"),
            (f"{fmt(s['train_seconds'], 1)} s", "training time"),
            (f"{fmt(s['train_examples_per_second'], 0)}", "training examples/s")]


def budget_note(r: dict) -> str:
    """One line per analysis the time budget sampled or skipped, and how to get them all."""
    lines = [part["line"] for part in (r["report"].get("budget") or {}).get("parts", []) if part.get("line")]
    if not lines:
        return ""
    run = shlex.quote(r["report"]["path"])
    return note("; ".join(lines) + f". For every analysis in full: neuroclass report {run}")


def data(r: dict, pics: dict) -> str:
    d = r["data"]
    splits = list(d["class_counts"])
    rows = [[name] + [d["class_counts"][s][i] for s in splits] for i, name in enumerate(d["classes"])]
    body = chart(pics.get("balance"), "examples per class and split")
    body += table(["class"] + splits, rows, numeric=set(range(1, len(splits) + 1)))
    method = ", ".join(f"{k} {v}" for k, v in d["split_method"].items())
    body += note(f"split: {method}" + (f"; {d['skipped_files']:,} unreadable files were skipped at load"
                                       if d["skipped_files"] else ""))
    if "samples" in d and pics.get("samples"):
        body += "<h3>Sample training images per class</h3><table class=\"samples\"><tbody>"
        for name, uris in pics.get("samples", {}).items():
            imgs = "".join(f'<td><img class="px" src="{esc(u)}" alt="{esc(name)}"></td>' for u in uris)
            body += f"<tr><th>{esc(name)}</th>{imgs}</tr>"
        body += "</tbody></table>"
        if len(d["classes"]) > len(d["samples"]):
            body += note(f"first {len(d['samples'])} of {len(d['classes'])} classes shown")
    if "columns" in d:
        body += columns_html(d["columns"])
    if "features" in d:
        f = d["features"]
        body += f"<h3>Model inputs (training split, after the fitted preprocessing; {f['shown']} of {f['count']})</h3>"
        body += table(["feature", "min", "mean", "std", "max"],
                      [[row["feature"], fmt(row["min"]), fmt(row["mean"]), fmt(row["std"]), fmt(row["max"])]
                       for row in f["rows"]], numeric={1, 2, 3, 4})
    return body + data_issues(d.get("issues")) + leakage(d["leakage"], pics)


def training(r: dict, pics: dict) -> str:
    t = r["training"]
    if not t["history"]:
        return note("no per-epoch history was recorded (metrics.csv missing)")
    stop = t["stop_detail"] or STOPPED.get(read_stop_reason(t["stop_reason"]), "not recorded")
    if t.get("classical"):
        return _fit_facts(t, stop, pics)
    best = (f"weights restored from epoch {t['best_epoch']}" if t["best_epoch"]
            else "final weights kept")
    facts = [("epochs", t["epochs"]), ("stopped", stop), ("early stopping", best),
             ("patience", t["patience"] or "off"),
             ("optimizer", f"{t['optim']['name']}, lr {t['optim']['lr']:g}, {t['optim']['schedule']} "
                           f"schedule, weight decay {t['optim']['weight_decay']:g}"),
             ("training time", f"{fmt(t['train_seconds'], 1)} s")]
    if t.get("resumed"):  # an interrupted run, continued with neuroclass train --resume
        facts.append(("resumed", "; ".join(f"{r['at']} at epoch {r['epoch']}, step {r['step']}"
                                           for r in t["resumed"])))
    return chart(pics.get("training"), "loss, accuracy and learning rate per epoch") + key_values(facts)


def _fit_facts(t: dict, stop: str, pics: dict) -> str:
    """The Training section of a classical family: fitted once, rounds instead of epochs."""
    c = t["classical"]
    facts = [("family", c.get("family")), ("rounds", c.get("rounds") or "none (fitted in one go)"),
             ("stopped", stop), ("early stopping", c.get("early_stopping") or "none"),
             ("fitting time", f"{fmt(t['train_seconds'], 1)} s")]
    if c.get("warnings"):
        facts.append(("library warnings", "; ".join(c["warnings"])))
    caption = "validation loss and accuracy per round" if len(t["history"]) > 1 else ""
    return (chart(pics.get("training"), caption) if caption else "") + key_values(facts)


def metrics(r: dict, pics: dict) -> str:
    m = r["metrics"]
    auc = fmt(m["roc_auc_ovr_macro"]) if m["roc_auc_ovr_macro"] is not None else m["roc_auc_reason"]
    if m["roc_auc_ovr_macro"] is not None and m.get("roc_auc_reason"):
        auc += f" ({m['roc_auc_reason']})"  # over the tested classes only
    rows = [("examples", fmt(m["n"])), ("accuracy", fmt(m["accuracy"])),
            ("balanced accuracy", fmt(m["balanced_accuracy"]))]
    rows += [(f"top-{k} accuracy", fmt(v)) for k, v in m["top_k_accuracy"].items()]
    rows += [("log loss", fmt(m["log_loss"])), ("ROC-AUC (one-vs-rest, macro)", auc)]
    per_class = [[name, fmt(c["precision"]), fmt(c["recall"]), fmt(c["f1"]), fmt(c["support"])]
                 if c.get("tested", True) else
                 [name, "not tested" if c["precision"] is None else fmt(c["precision"]), "not tested",
                  "not tested", fmt(0)]
                 for name, c in m["per_class"].items()]
    untested = m.get("not_tested") or []
    for average, values in m["averages"].items():
        over = f" ({len(m['per_class']) - len(untested)} tested classes)" if untested else ""
        per_class.append([f"{average} average{over}", fmt(values["precision"]), fmt(values["recall"]),
                          fmt(values["f1"]), fmt(m["n"])])
    body = key_values(rows) + table(["class", "precision", "recall", "F1", "support"], per_class,
                                    numeric={1, 2, 3, 4})
    if untested:
        wrong = [f"{name} {m['per_class'][name].get('predicted', 0)}x" for name in untested
                 if m["per_class"][name].get("predicted")]
        body += note(f"not tested: {', '.join(untested)} (no examples in the evaluation data; left out "
                     "of the averages, which a 0 would drag down)"
                     + (f"; predicted anyway, every time wrongly: {', '.join(wrong)}" if wrong else ""))
    return body


def confusion(r: dict, pics: dict) -> str:
    pairs = [[p["true"], p["predicted"], fmt(p["count"]), pct(p["rate"])]
             for p in r["confusion"]["most_confused"]]
    body = chart(pics.get("confusion"), "confusion matrices")
    body += note("left: counts; right: row-normalized, each row as shares of its true class "
                 "(recall on the diagonal)") if pics.get("confusion") else ""
    body += "<h3>Most confused pairs</h3>"
    return body + (table(["true class", "predicted as", "count", "share of the true class"], pairs,
                         numeric={2, 3}) if pairs else note("no errors: nothing is confused"))


def mistakes(r: dict, pics: dict) -> str:
    mk = r["mistakes"]
    head = note(f"{mk['count_wrong']:,} of {mk['n']:,} evaluation examples are wrong; "
                f"the {len(mk['examples'])} with the highest loss are shown.")
    if not mk["examples"]:
        return head
    if pics.get("mistakes"):
        items = [example(uri, [f"true: {e['true']}", f"predicted: {e['predicted']}",
                               f"p = {e['probability']:.3f}"])
                 for uri, e in zip(pics["mistakes"], mk["examples"])]
        return head + '<div class="gallery">' + "".join(items) + "</div>"
    header, key = row_column(mk)
    rows = [[e[key], e["true"], e["predicted"], fmt(e["probability"]), fmt(e["loss"])]
            for e in mk["examples"]]
    return head + table([header, "true", "predicted", "probability", "loss"], rows, numeric={0, 3, 4})


def row_column(found: dict) -> tuple[str, str]:
    """(header, key) of the column that places ``found``'s examples: a table file's data row,
    counted from 1 as messages about the file count them, else the position in the evaluated data."""
    return ("data row (from 1)", "row") if found.get("rows") == "data row" else ("index (from 0)", "index")


def calibration(r: dict, pics: dict) -> str:
    c = r["calibration"]
    rows = [("temperature used by predict (model.json)", fmt(c["temperature"])),
            ("ECE on evaluation data, T = 1 / with temperature", f"{fmt(c['ece_before'])} / {fmt(c['ece_after'])}"),
            ("log loss on evaluation data, T = 1 / with temperature",
             f"{fmt(c['log_loss_before'])} / {fmt(c['log_loss_after'])}")]
    g = c["guard"]
    if g:
        rows += [(f"fit on the validation split ({counted(g['n'], 'example')})",
                  f"T = {g['candidate_temperature']:.4g}: {g['decision']}"), ("guard", g["reason"]),
                 ("validation ECE before / after", f"{fmt(g['val_ece_before'])} / {fmt(g['val_ece_after'])}")]
    else:
        rows.append(("fit", "no validation split, so no temperature was fitted (T = 1)"))
    return chart(pics.get("calibration"), "reliability diagrams") + key_values(rows)


def abstention(r: dict, pics: dict) -> str:
    wanted = {0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95}
    rows = [[f"{p['threshold']:.2f}", pct(p["coverage"]), pct(p["accuracy"])]
            for p in r["abstention"]["curve"] if round(p["threshold"], 2) in wanted]
    return (chart(pics.get("abstention"), "accuracy against coverage")
            + table(["answer when top probability ≥", "answered", "accuracy on answered"], rows, numeric={1, 2})
            + note(f"use it: neuroclass predict {r['report']['path']} FILE... --abstain-below 0.8"))


def robustness(r: dict, pics: dict) -> str:
    rb = r["robustness"]
    if rb.get("skipped"):
        return note(rb["skipped"])
    if rb.get("error"):
        return note(f"not measured: {rb['error']}")
    body = chart(pics.get("robustness"), "accuracy against perturbation strength")
    body += note(f"measured on {rb.get('examples', 'a sample of')} evaluation examples, with the bare "
                 "model (no test-time augmentation)")
    tta = rb.get("tta") or {}
    if tta:
        body += key_values([("accuracy, plain", fmt(tta.get("plain"))),
                            ("accuracy, averaged with a horizontal flip", fmt(tta.get("flip"))),
                            ("gain from test-time augmentation", fmt(tta.get("gain")))])
    return body


def doctor(r: dict, pics: dict) -> str:
    d = r["doctor"]
    body = note(f"the doctor could not run: {d['error']}") if d.get("error") else ""
    if d["findings"]:
        rows = "".join(f"<tr><td>{badge('ok' if f.get('rule') == 'ok' else f.get('severity'))}</td>"
                       f"<td>{esc(f.get('finding'))}</td><td>{esc(f.get('fix'))}</td></tr>" for f in d["findings"])
        body += f"<table><thead><tr><th>severity</th><th>finding</th><th>what to change</th></tr></thead><tbody>{rows}</tbody></table>"
    elif not d.get("error"):
        body += f"<p>{badge('ok')} no problems found by the rules.</p>"
    body += "".join(note(d[key]["skipped"]) for key in ("dead_relu", "mislabelled")
                    if (d.get(key) or {}).get("skipped"))
    dead = d.get("dead_relu") or {}
    if dead and not dead.get("error") and dead.get("units"):
        body += note(f"dead ReLU units: {dead.get('dead', 0):,} of {dead['units']:,} "
                     f"({pct(dead.get('fraction'))}) never activate on training examples")
    wrong = d.get("mislabelled") or {}
    if wrong.get("examples"):
        body += (f"<h3>Evaluation examples that may be mislabelled ({counted(wrong['count'], 'suspect')})</h3>"
                 + note(wrong.get("method", "")))
        if pics.get("mislabelled"):
            body += '<div class="gallery">' + "".join(example(uri, mislabel_caption(e)) for uri, e in
                                                      zip(pics["mislabelled"], wrong["examples"])) + "</div>"
        else:
            header, key = row_column(wrong)
            body += table([header, "labelled", "p", "model says", "p"],
                          [[e[key], e["label"], fmt(e["label_probability"]), e["predicted"],
                            fmt(e["predicted_probability"])] for e in wrong["examples"]], numeric={0, 2, 4})
    return body


def badge(severity) -> str:
    return f'<span class="badge {esc(severity)}">{esc(severity)}</span>'


def mislabel_caption(e: dict) -> list[str]:
    return [f"labelled: {e['label']} (p = {e['label_probability']:.3f})",
            f"model: {e['predicted']} (p = {e['predicted_probability']:.3f})"]


def reproduce(r: dict, pics: dict) -> str:
    rp = r["reproduce"]
    env = [(k, v) for k, v in rp["environment"].items() if k != "command"]
    return (f"<h3>Command</h3><pre>{esc(rp['command'] or '(not recorded)')}</pre>"
            f"<h3>Replay from the saved configuration</h3><pre>{esc(rp['replay'])}</pre>"
            + key_values([("seed", rp["seed"])])
            + "<h3>Environment</h3>" + key_values(env)
            + f"<h3>Resolved configuration (config.yaml)</h3><pre class=\"config\">{esc(rp['config_yaml'])}</pre>")


RENDERERS = {"summary": summary, "data": data, "training": training, "metrics": metrics,
             "confusion": confusion, "mistakes": mistakes, "calibration": calibration,
             "abstention": abstention, "robustness": robustness, "importance": importance_html, "doctor": doctor,
             "reproduce": reproduce}


def render_sections(report: dict, pictures: dict) -> list[tuple[str, str, str]]:
    """(anchor, title, html) for each of the twelve sections, in order."""
    return [(anchor, TITLES[anchor], section(i, anchor, TITLES[anchor], EXPLAIN[anchor], render(report, pictures)))
            for i, (anchor, render) in enumerate(RENDERERS.items(), start=1)]
