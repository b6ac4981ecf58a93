"""The explanation page: one self-contained HTML file (the run report's building blocks,
report/html.py: CSS inline, images as data URIs, no scripts, nothing fetched) and the record of its
numbers (``explanation_record``, written as JSON beside it).

Example::

    document = render_page(found, "explain-test-3.json")
    document.startswith("<!DOCTYPE html>")
    # -> True
"""
from __future__ import annotations

import numpy as np

from neuroclass.evaluation.explain import Explanation, loss_formula
from neuroclass.evaluation.explain_pictures import (heat_uri, overlay_uri, picture_uri, signed_picture_uri,
                                                    strongest_channels)
from neuroclass.evaluation.explain_steps import DenseLayer, DenseStep, Loss, Neuron, OutputStep, UpdateStep, softmax
from neuroclass.evaluation.report.html import cards, esc, example, fmt, key_values, note, page, section, table

GRID_SIDE = 28  # the numbers of at most this many rows and columns are printed
MAPS_SHOWN = 12  # feature maps per stage
TABLE_FEATURES = 20  # rows of a table run's attribution table
GRID_STYLE = 'style="font-size:9px;line-height:1.1"'
LOSS_NAMES = {Loss.CROSS_ENTROPY: "cross-entropy", Loss.SQUARED_ERROR: "squared error"}


def render_page(found: Explanation, json_name: str) -> str:
    """The whole HTML document for ``found``; ``json_name``: the file of its numbers, named in the
    footer."""
    parts = [("summary", "Summary", _summary(found)), ("input", "The input", _input(found))]
    if found.dense:
        parts.append(("dense", "Dense layers", _dense(found)))
    parts.append(("output", "Output probabilities", _output(found)))
    if found.update is not None:
        parts.append(("gradient", "Loss, gradient and one update", _gradient(found)))
    if found.first is not None:
        parts.append(("weights", "First-layer weights", _weights(found)))
    if found.stages:
        parts.append(("stages", "Feature maps", _stages(found)))
    parts.append(("attribution", "Attribution", _attribution(found)))
    parts.append(("method", "How this was computed", _method(found)))
    sections = [(anchor, title, section(i, anchor, title, *body))
                for i, (anchor, title, body) in enumerate(parts, start=1)]
    out = found.output
    subtitle = (f"{found.source}: predicted {found.classes[out.predicted]}"
                + (f", true label {found.classes[out.label]}" if out.label is not None else ""))
    return page(f"neuroclass explain: {found.run.name}", subtitle, sections,
                f"Made by neuroclass from {found.run}. Every number is in {json_name}.")


def _class_name(found: Explanation, index: int | None) -> str:
    return "n/a" if index is None else found.classes[index]


def _summary(found: Explanation) -> tuple[str, str]:
    out = found.output
    items = [(found.classes[out.predicted], "predicted class"),
             (fmt(float(out.probabilities[out.predicted])), "its probability")]
    if out.label is not None:
        items += [(found.classes[out.label], "true label"), (fmt(out.loss), f"loss ({LOSS_NAMES[out.loss_kind]})")]
    if found.update is not None:
        items.append((fmt(float(found.update.new_probabilities[out.label])), "p(true) after one step"))
    pairs = [("run", str(found.run)), ("model family", found.family), ("input", found.source),
             ("temperature", f"{out.temperature:.4g}" + ("" if out.temperature != 1.0 else " (no calibration)")),
             ("test-time views", found.policy.tta)]
    notes = "".join(note(n) for n in found.notes)
    return ("What the network predicted for this input and how sure it was; the sections below follow "
            "the numbers from the input to the prediction.", cards(items) + key_values(pairs) + notes)


def _input(found: Explanation) -> tuple[str, str]:
    if found.kind == "table":
        rows = [[name, fmt(float(v))] for name, v in zip(found.input_names, found.seen.reshape(-1))]
        then = "and the model's standardization" if found.standardized else "which the network takes as it is"
        return ("The row as the network sees it: each feature after the run's preprocessing (imputing, "
                f"scaling, one-hot columns), {then}.", table(["feature", "value seen"], rows, numeric={1}))
    seen = found.seen
    size = f"{found.raw.shape[2]}x{found.raw.shape[1]} pixels"
    body = ('<div class="gallery">' + example(picture_uri(found.raw), ["the input", size])
            + example(signed_picture_uri(seen), ["what the network sees", "blue below 0, red above"]) + "</div>")
    channel = seen[0][:GRID_SIDE, :GRID_SIDE]
    rows = [[f"{v:.2f}" for v in row] for row in channel]
    cropped = "" if channel.shape == seen.shape[1:] else f" (the top-left {channel.shape[0]}x{channel.shape[1]})"
    grid = table([str(i) for i in range(channel.shape[1])], rows, numeric=set(range(channel.shape[1])))
    formula = "(pixel / 255 - mean) / std, with the run's mean and std" if found.standardized else "pixel / 255"
    body += note(f"The numbers of channel 0{cropped}: {formula}.")
    body += f"<div {GRID_STYLE}>{grid}</div>"
    scaled = ("scaled to 0..1 and standardized with the mean and spread of the training images" if found.standardized
              else "scaled to 0..1 (pixel / 255), which this network takes as it is, without standardization")
    return f"The image, and the numbers the network takes in: each pixel {scaled}.", body


def _dense(found: Explanation) -> tuple[str, str]:
    body = ""
    for k, layer in enumerate(found.dense):
        step = layer.step
        names = found.input_names if k == 0 and step.inputs == len(found.input_names) else None
        last = k == len(found.dense) - 1
        after = ", ".join(layer.after) if layer.after else ("none: these are the logits" if last else "none")
        body += (f"<h3>{esc(step.name)}: {step.inputs:,} inputs -> {step.units:,} units</h3>"
                 + note(f"then: {after}; activation: {step.activation}"
                        + ("" if step.scale is None else "; batch normalisation at inference: scale * z + shift")))
        if layer.matches is False:
            body += note("these activations differ from what the next layer received; see the notes above")
        body += _neuron_table(step, found.classes if last else None)
        classes = found.classes if last else None
        body += ('<div class="gallery">' + "".join(_terms(n, step, found, names, classes) for n in step.neurons[:3])
                 + "</div>")
    return ("Each unit computes a weighted sum of its inputs plus a bias, z = sum_i w_i x_i + b, then an "
            "activation a = f(z). Shown: the most active units and the inputs that added most (w_i * x_i).",
            body)


def _neuron_table(step: DenseStep, classes: list[str] | None) -> str:
    headers = (["unit", "sum w_i x_i", "bias b", "z = sum + b"]
               + ([] if step.scale is None else ["scale z + shift"]) + ["a"])
    rows = []
    for n in step.neurons:
        row = [classes[n.index] if classes else n.index, fmt(n.weighted_sum), fmt(n.bias), fmt(n.z)]
        row += [] if n.normalised is None else [fmt(n.normalised)]
        rows.append(row + [fmt(n.a)])
    return table(headers, rows, numeric=set(range(1, len(headers))))


def _terms(neuron: Neuron, step: DenseStep, found: Explanation, names: list[str] | None,
           classes: list[str] | None) -> str:
    """The largest terms w_i * x_i of one unit (named by ``classes`` in the output layer), its
    inputs named by ``names`` (else "unit i"), with its weights as a picture for image inputs."""
    rows = [[names[t.index] if names else f"unit {t.index}", fmt(t.weight), fmt(t.value), fmt(t.product)]
            for t in neuron.terms]
    rows.append([f"the other {step.inputs - len(neuron.terms):,} inputs", "", "", fmt(neuron.rest)])
    unit = classes[neuron.index] if classes else f"unit {neuron.index}"
    body = f"<div><b>{esc(unit)}</b>: the inputs that added most" + \
        table(["input", "weight w_i", "value x_i", "w_i * x_i"], rows, numeric={1, 2, 3})
    first = found.first
    if names and found.kind == "image" and first is not None and first.kind == "dense" and first.name == step.name:
        template = first.weight[neuron.index].reshape(found.seen.shape)
        body += example(signed_picture_uri(template), [f"weights of {unit}", "blue < 0 < red"])
    return body + "</div>"


def _output(found: Explanation) -> tuple[str, str]:
    out, k = found.output, len(found.classes)
    order = np.argsort(-out.probabilities, kind="stable")
    if out.output == "sigmoid":
        columns, words = _sigmoid_columns(out, k)
    else:
        columns = [("logit z", out.logits), ("softmax(z)", softmax(out.logits)),
                   (f"softmax(z / {out.temperature:.3g})", out.probabilities)]
        calibration = (f"The run was calibrated on its validation split: logits are divided by T = "
                       f"{out.temperature:.4g} before the softmax." if out.temperature != 1.0 else
                       "The run has no calibration temperature (T = 1).")
        words = (f"softmax turns the {k} logits into probabilities: p_k = exp(z_k / T) / sum_j exp(z_j / T). "
                 + calibration)
    if found.policy.tta != "none":
        columns.append(("Predictor (views)", found.predictor_probabilities))
    headers = ["class"] + [name for name, _ in columns]
    rows = [[found.classes[i] + (" (true)" if i == out.label else "")] + [fmt(float(v[i])) for _, v in columns]
            for i in order[:min(k, 20)]]
    return words, table(headers, rows, numeric=set(range(1, len(headers))))


def _sigmoid_columns(out: OutputStep, k: int) -> tuple[list[tuple[str, np.ndarray]], str]:
    """The output table's columns and words for sigmoid outputs: each on its own, then divided by
    their sum (and calibrated), as the run's predictions make them."""
    shares = out.outputs / max(float(out.outputs.sum()), 1e-30)
    columns = [("weighted sum z", out.logits), ("sigmoid(z)", out.outputs), ("sigmoid(z) / sum", shares)]
    words = (f"Each of the {k} output neurons squashes its weighted sum with the sigmoid, a_k = 1 / (1 + e^-z_k), "
             "on its own, so the outputs need not add up to 1; the run's predictions divide them by their sum, "
             "p_k = a_k / sum_j a_j")
    if out.temperature == 1.0:
        return columns, words + ". The run has no calibration temperature (T = 1)."
    columns.append((f"softmax(log(p) / {out.temperature:.3g})", out.probabilities))
    return columns, words + (f", then calibrate them on the validation split's T = {out.temperature:.4g}: "
                             "softmax(log p / T).")


def _gradient(found: Explanation) -> tuple[str, str]:
    out, u, y = found.output, found.update, found.output.label
    k = len(found.classes)
    if out.loss_kind is Loss.SQUARED_ERROR:
        low, high = out.targets
        target = [high if i == y else low for i in range(k)]
        signal = [("sigmoid(z) = a", [fmt(float(v)) for v in out.outputs]), ("target", [f"{t:g}" for t in target]),
                  ("dL/dz = (a - target) a (1 - a)", [fmt(float(v)) for v in u.grad_logits])]
    else:
        signal = [("softmax(z)", [fmt(float(v)) for v in softmax(out.logits)]),  # the loss's: no temperature
                  ("onehot", [int(i == y) for i in range(k)]),
                  ("dL/dz = p - onehot", [fmt(float(v)) for v in u.grad_logits])]
    columns = signal + [(name, [fmt(float(v)) for v in values]) for name, values in
                        [("z after", u.new_logits), ("p before", out.probabilities), ("p after", u.new_probabilities)]]
    rows = [[found.classes[i]] + [cells[i] for _, cells in columns]
            for i in np.argsort(-np.abs(u.grad_logits), kind="stable")[:20]]
    change = u.last_layer_change
    largest = np.argsort(-np.abs(u.grad_weight), axis=None, kind="stable")[:8]
    weights = [[found.classes[i], j, fmt(float(u.grad_weight[i, j])), fmt(float(change[i, j]))]
               for i, j in zip(*np.unravel_index(largest, u.grad_weight.shape))]
    before, after = fmt(float(out.probabilities[y])), fmt(float(u.new_probabilities[y]))
    rate = ("learning rate (the network's lr)", f"{u.lr:g}") if u.every_layer else \
        ("learning rate (the run's optim.lr)", f"{u.lr:g}")
    facts = [(f"loss L = {loss_formula(out)}", fmt(u.loss)), rate]
    facts += [("optimiser", u.optimizer)] if u.every_layer else []
    facts += [("loss after the step", fmt(u.new_loss)),
              (f"p({found.classes[y]}) before -> after", f"{before} -> {after}")]
    step = f"change by the {u.optimizer} step" if u.every_layer else "change -lr * dL/dW"
    body = (key_values(facts) + table(["class"] + [name for name, _ in columns], rows, numeric=set(range(1, 7)))
            + "<h3>The largest entries of dL/dW = outer(dL/dz, a_prev)</h3>"
            + table(["class (row)", "input unit (column)", "dL/dW", step], weights, numeric={1, 2, 3}))
    return _gradient_words(found), body + _changes(u)


def _changes(u: UpdateStep) -> str:
    """Each parameter's gradient and change, for a step that moves every layer."""
    if not u.changes:
        return ""
    rows = [[c.name, "x".join(map(str, c.shape)), fmt(c.largest_gradient), fmt(c.largest_change), fmt(c.mean_change)]
            for c in u.changes]
    return "<h3>What the step changed in each layer</h3>" + table(
        ["parameter", "shape", "largest |dL/dp|", "largest |change|", "mean |change|"], rows, numeric={2, 3, 4})


def _gradient_words(found: Explanation) -> str:
    out, u = found.output, found.update
    if out.loss_kind is Loss.SQUARED_ERROR:
        low, high = out.targets
        loss = (f"Training lowers the squared error between the sigmoid outputs and their targets ({high:g} for the "
                f"true class, {low:g} for the others). For the last layer ({found.head}) the gradient is "
                "dL/dz = (a - target) a (1 - a) for the weighted sums (the error times the sigmoid's slope)")
    else:
        loss = (f"Training lowers the cross-entropy loss of the true class. For the last layer ({found.head}) the "
                "gradient is dL/dz = p - onehot(true) for the logits")
    loss += " and dL/dW = outer(dL/dz, a_prev) for the weights (a_prev: the layer's input)."
    if not u.every_layer:
        return loss + (" One plain step W -= lr * dL/dW, b -= lr * dL/dz is applied here and the probabilities are "
                       "computed again with the new weights (training itself uses the run's optimizer, schedule and "
                       "weight decay, over batches).")
    return loss + (f" Backpropagation carries dL/dz down through every layer; one step of the run's optimiser "
                   f"({u.optimizer}, learning rate {u.lr:g}) changes every weight and bias by what the network's own "
                   "gradients() reports for this example, and the network computes the probabilities again with "
                   "the new weights.")


def _weights(found: Explanation) -> tuple[str, str]:
    first = found.first
    figures = []
    for unit in first.shown:
        w = first.weight[unit]
        template = w.reshape(found.seen.shape) if first.kind == "dense" else w
        figures.append(example(signed_picture_uri(template), [f"{'unit' if first.kind == 'dense' else 'filter'} {unit}",
                                                              f"{'x'.join(str(s) for s in template.shape[1:])}"]))
    what = ("each hidden unit's weights, one per input pixel, drawn as a picture: red pixels raise the unit's "
            "sum, blue ones lower it" if first.kind == "dense" else
            "the filters the first convolution slides over the image (red weights add, blue subtract)")
    return (f"The first layer ({first.name}): {what}. Shown: the {len(first.shown)} most active for this input.",
            '<div class="gallery">' + "".join(figures) + "</div>")


def _stages(found: Explanation) -> tuple[str, str]:
    body = ""
    for stage in found.stages:
        c, h, w = stage.maps.shape
        figures = [example(heat_uri(stage.maps[i], signed=False), [f"channel {i}", f"mean {stage.maps[i].mean():.3g}"])
                   for i in strongest_channels(stage.maps, MAPS_SHOWN)]
        body += f'<h3>{esc(stage.name)}: {c} maps of {h}x{w}</h3><div class="gallery">{"".join(figures)}</div>'
    return ("What the network computes from the input at each resolution, before its classifier: the output "
            "of the last layer at that resolution, the strongest maps (largest mean) first; dark is low, "
            "bright is high.", body)


def _attribution(found: Explanation) -> tuple[str, str]:
    if found.kind == "table":
        return _table_attribution(found)
    figures = []
    for a in found.attributions:
        signed = a.method == "integrated gradients"
        heat = a.values.sum(axis=0) if a.values.ndim == 3 else a.values
        caption = [a.method, f"{a.role}: {found.classes[a.target]}"]
        figures.append(example(heat_uri(heat, signed), caption) + example(overlay_uri(found.raw, heat, signed),
                                                                          caption[:1] + ["over the input"]))
    details = "".join(note(f"{a.method} ({a.role}: {found.classes[a.target]}): {a.detail}") for a in found.attributions)
    cam = ("; Grad-CAM: where the last conv stage's maps supported the class"
           if any(a.method == "Grad-CAM" for a in found.attributions) else "")
    return ("Which pixels moved the class's logit. Integrated gradients: red raised it, blue lowered it (summed "
            f"over colour channels); saliency: how strongly a small change of the pixel would move it{cam}.",
            '<div class="gallery">' + "".join(figures) + "</div>" + details)


def _table_attribution(found: Explanation) -> tuple[str, str]:
    maps = found.attributions
    order = np.argsort(-np.abs(maps[0].values), kind="stable")[:TABLE_FEATURES]
    headers = ["feature", "value seen"] + [f"{a.method} ({a.role}: {found.classes[a.target]})" for a in maps]
    rows = [[found.input_names[i], fmt(float(found.seen[i]))] + [fmt(float(a.values[i])) for a in maps] for i in order]
    details = "".join(note(f"{a.method}: {a.detail}") for a in maps[:1])
    return ("How much each feature moved the class's logit (the largest first): positive values raised it, "
            "negative ones lowered it.", table(headers, rows, numeric=set(range(1, len(headers)))) + details)


NUMPY_NETWORK_LINES = [
    "Dense layers: the weights and biases are the trained network's; each layer's input, weighted sums, batch "
    "normalisation and activations come from the network's own trace() of this input (NumPy, float32); the sums "
    "and each input's share w_i * x_i are computed again in float64 beside them.",
    "Loss, gradient and update: the network's own gradients() for this example and its label (the run's loss, the "
    "output layer's error signal, every parameter's gradient and the change one step of its optimiser makes); the "
    "step is applied to a copy of the network, which computes the probabilities again.",
    "Attribution maps: computed in NumPy through the network's own backward pass, layer by layer; Captum, which "
    "the other families' pages use, needs torch autograd, which a NumPy forward pass does not have."]
REFERENCES = [
    "Integrated gradients: Sundararajan, Taly and Yan 2017, Axiomatic Attribution for Deep Networks.",
    "Saliency: Simonyan, Vedaldi and Zisserman 2014, Deep Inside Convolutional Networks."]


def _method(found: Explanation) -> tuple[str, str]:
    if found.numpy_network:
        lines = NUMPY_NETWORK_LINES + REFERENCES
    else:
        lines = ["Dense layers: the weights and biases are the trained model's; each layer's input is what the "
                 "model's own forward pass gave it; the sums, activations and softmax are computed again in NumPy "
                 "(float64).", *REFERENCES,
                 "Grad-CAM: Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks via "
                 "Gradient-based Localization. The maps are computed with Captum."]
    methods = [[a.method, a.role, found.classes[a.target], a.detail] for a in found.attributions]
    return ("Where each number on this page comes from.",
            "".join(f"<p>{esc(line)}</p>" for line in lines) + table(["method", "for", "class", "detail"], methods))


def explanation_record(found: Explanation) -> dict:
    """The page's numbers as JSON values: input, output, update, dense layers, attributions."""
    out, u = found.output, found.update
    record = {"run": str(found.run), "family": found.family, "source": found.source, "classes": found.classes,
              "label": out.label, "predicted": out.predicted, "temperature": out.temperature,
              "logits": out.logits.tolist(), "probabilities": out.probabilities.tolist(),
              "predictor_probabilities": found.predictor_probabilities.tolist(), "loss": out.loss,
              "tta": found.policy.tta, "notes": found.notes,
              "attributions": [{"method": a.method, "role": a.role, "target": a.target, "detail": a.detail}
                               for a in found.attributions],
              "dense": [_layer_record(layer) for layer in found.dense],
              "stages": [{"name": s.name, "shape": list(s.maps.shape)} for s in found.stages]}
    record.update(output=out.output, loss_kind=out.loss_kind.value)
    if out.outputs is not None:
        record.update(outputs=out.outputs.tolist(), targets=list(out.targets) if out.targets else None)
    if u is not None:
        record["update"] = {"lr": u.lr, "grad_logits": u.grad_logits.tolist(), "new_logits": u.new_logits.tolist(),
                            "new_probabilities": u.new_probabilities.tolist(), "loss": u.loss, "new_loss": u.new_loss,
                            "optimizer": u.optimizer, "every_layer": u.every_layer,
                            "changes": [{"name": c.name, "shape": list(c.shape), "largest_gradient": c.largest_gradient,
                                         "largest_change": c.largest_change, "mean_change": c.mean_change}
                                        for c in u.changes]}
    return record


def _layer_record(layer: DenseLayer) -> dict:
    step = layer.step
    return {"name": step.name, "inputs": step.inputs, "units": step.units, "activation": step.activation,
            "matches": layer.matches,
            "neurons": [{"unit": n.index, "weighted_sum": n.weighted_sum, "bias": n.bias, "z": n.z,
                         "normalised": n.normalised, "a": n.a} for n in step.neurons]}
