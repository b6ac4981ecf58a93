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

from neuroclass.evaluation.explain import CALIBRATED_LOSS, Explanation, own_loss_words
from neuroclass.evaluation.explain_format import number
from neuroclass.evaluation.explain_page_output import gradient_section, output_section
from neuroclass.evaluation.explain_page_table import embedding_lookup, table_attribution, table_input
from neuroclass.evaluation.explain_pictures import (heat_uri, overlay_uri, picture_uri, signed_picture_uri,
                                                    strongest_channels)
from neuroclass.evaluation.explain_steps import DenseLayer, DenseStep, Loss, Neuron
from neuroclass.evaluation.explain_training import SHOWN_CLASSES, setup_words
from neuroclass.evaluation.report.html import cards, esc, example, key_values, note, page, section, table

GRID_SIDE = 28  # the numbers of at most this many rows and columns are printed
MAPS_SHOWN = 12  # feature maps per stage
GRID_STYLE = 'style="font-size:9px;line-height:1.1"'
LOSS_NAMES = {Loss.CROSS_ENTROPY: "cross-entropy", Loss.SQUARED_ERROR: "squared error"}


def render_page(found: Explanation, json_name: str) -> str:
    """The whole HTML document for ``found``; ``json_name``: the file of its numbers, named in the
    footer."""
    parts = [("summary", "Summary", _summary(found)), ("input", "The input", _input(found))]
    if found.dense:
        parts.append(("dense", "Dense layers", _dense(found)))
    parts.append(("output", "Output probabilities", output_section(found)))
    if found.update is not None:
        parts.append(("gradient", "Loss, gradient and one update", gradient_section(found)))
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


def _summary(found: Explanation) -> tuple[str, str]:
    out = found.output
    t = number(out.temperature)
    items = [(found.classes[out.predicted], "predicted class"),
             (number(out.probabilities[out.predicted]), f"its probability p_T (T = {t})")]
    setup = found.training
    if out.label is not None:
        plain = "" if setup is None else ", the steps' plain loss"
        items += [(found.classes[out.label], "true label"),
                  (number(out.loss), f"training loss ({LOSS_NAMES[out.loss_kind]}, no T{plain})"),
                  (number(out.calibrated_loss), f"calibrated loss {CALIBRATED_LOSS} (T = {t})")]
        if setup is not None and setup.example_loss is not None:
            items.append((number(setup.example_loss), own_loss_words(found)))
    if found.update is not None:
        items.append((number(found.update.new_probabilities[out.label]), "p_T[true] after one step"))
    pairs = [("run", str(found.run)), ("model family", found.family), ("input", found.source),
             ("temperature T", t + ("" if out.temperature != 1.0 else " (no calibration)")),
             ("test-time views", found.policy.tta)]
    if setup is not None:
        pairs.append(("training loss", f"with {setup_words(setup)}, which the steps below leave out (notes)"))
    notes = "".join(note(n) for n in found.notes)
    return ("What the network predicted for this input and how sure it was; the sections below follow "
            "the numbers from the input to the prediction.", cards(items) + key_values(pairs) + notes
            + _per_class_table(found))


def _per_class_table(found: Explanation) -> str:
    """The training split's classes with their loss weights and draws, when the run had either."""
    setup = found.training
    if setup is None or setup.counts is None or (setup.weights is None and setup.draws is None):
        return ""
    columns = [("training examples", setup.counts)]
    columns += [] if setup.weights is None else [(f"loss weight (train.class_weight={setup.class_weight})",
                                                  setup.weights)]
    columns += [] if setup.draws is None else [(f"draws per example an epoch (data.sampler={setup.sampler})",
                                                setup.draws)]
    rows = [[name + (" (true)" if i == found.output.label else "")] + [number(v[i].item(), 3) for _, v in columns]
            for i, name in enumerate(found.classes[:SHOWN_CLASSES])]
    return table(["class"] + [name for name, _ in columns], rows, numeric=set(range(1, len(columns) + 1)))


def _input(found: Explanation) -> tuple[str, str]:
    if found.kind == "table":
        return table_input(found)
    seen = found.seen
    size = f"{found.raw.shape[2]}x{found.raw.shape[1]} pixels"
    body = ('<div class="gallery">' + example(picture_uri(found.raw), ["the input", size])
            + example(signed_picture_uri(seen), ["what the network sees", "blue below 0, red above"]) + "</div>")
    channel = seen[0][:GRID_SIDE, :GRID_SIDE]
    rows = [[number(v, 2) for v in row] for row in channel]
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
        names, lookup = _input_names_of(found, k, step)
        last = k == len(found.dense) - 1
        after = ", ".join(layer.after) if layer.after else ("none: these are the logits" if last else "none")
        body += lookup or f"<h3>{esc(step.name)}: {step.inputs:,} inputs -> {step.units:,} units</h3>"
        body += note(f"then: {after}; activation: {step.activation}"
                     + ("" if step.scale is None else "; batch normalisation at inference: scale * z + shift"))
        if layer.matches is False:
            body += note("these activations differ from what the next layer received; see the notes above")
        body += _neuron_table(step, found.classes if last else None)
        classes = found.classes if last else None
        body += ('<div class="gallery">' + "".join(_terms(n, step, found, names, classes) for n in step.neurons[:3])
                 + "</div>")
    return ("Each unit computes a weighted sum of its inputs plus a bias, z = sum_i w_i x_i + b, then an "
            "activation a = f(z). Shown: the most active units and the inputs that added most (w_i * x_i).",
            body)


def _input_names_of(found: Explanation, k: int, step: DenseStep) -> tuple[list[str] | None, str]:
    """Names of the inputs of dense layer ``k`` (None: "unit i"), and for a first layer that
    takes learned vectors of categories, its heading and lookup table (else "")."""
    if k != 0:
        return None, ""
    if found.layout is not None and found.layout.codes and step.inputs == found.layout.dense_width:
        return found.layout.dense_input_names(found.seen), embedding_lookup(found, step)
    takes_input = step.inputs == found.seen.size and np.allclose(step.x, found.seen.reshape(-1), rtol=1e-5, atol=1e-6)
    return (found.input_names if takes_input else None), ""


def _neuron_table(step: DenseStep, classes: list[str] | None) -> str:
    headers = (["unit", "sum w_i x_i", "bias b", "z = sum + b"]
               + ([] if step.scale is None else ["scale z + shift"]) + ["a"])
    rows = []
    for n in step.neurons:
        row = [classes[n.index] if classes else n.index, number(n.weighted_sum), number(n.bias), number(n.z)]
        row += [] if n.normalised is None else [number(n.normalised)]
        rows.append(row + [number(n.a)])
    return table(headers, rows, numeric=set(range(1, len(headers))))


def _terms(neuron: Neuron, step: DenseStep, found: Explanation, names: list[str] | None,
           classes: list[str] | None) -> str:
    """The largest terms w_i * x_i of one unit (named by ``classes`` in the output layer), its
    inputs named by ``names`` (else "unit i"), with its weights as a picture for image inputs."""
    rows = [[names[t.index] if names else f"unit {t.index}", number(t.weight), number(t.value), number(t.product)]
            for t in neuron.terms]
    rows.append([f"the other {step.inputs - len(neuron.terms):,} inputs", "", "", number(neuron.rest)])
    unit = classes[neuron.index] if classes else f"unit {neuron.index}"
    body = f"<div><b>{esc(unit)}</b>: the inputs that added most" + \
        table(["input", "weight w_i", "value x_i", "w_i * x_i"], rows, numeric={1, 2, 3})
    first = found.first
    if names and found.kind == "image" and first is not None and first.kind == "dense" and first.name == step.name:
        template = first.weight[neuron.index].reshape(found.seen.shape)
        body += example(signed_picture_uri(template), [f"weights of {unit}", "blue < 0 < red"])
    return body + "</div>"


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
        figures = [example(heat_uri(stage.maps[i], signed=False),
                           [f"channel {i}", f"mean {number(stage.maps[i].mean(), 3)}"])
                   for i in strongest_channels(stage.maps, MAPS_SHOWN)]
        body += f'<h3>{esc(stage.name)}: {c} maps of {h}x{w}</h3><div class="gallery">{"".join(figures)}</div>'
    return ("What the network computes from the input at each resolution, before its classifier: the output "
            "of the last layer at that resolution, the strongest maps (largest mean) first; dark is low, "
            "bright is high.", body)


def _attribution(found: Explanation) -> tuple[str, str]:
    if found.kind == "table":
        return table_attribution(found)
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
              "calibrated_loss": out.calibrated_loss, "row": found.row, "tta": found.policy.tta, "notes": found.notes,
              "attributions": [{"method": a.method, "role": a.role, "target": a.target, "detail": a.detail}
                               | ({"values": a.values.tolist()} if found.kind == "table" else {})
                               for a in found.attributions],
              "dense": [_layer_record(layer) for layer in found.dense],
              "stages": [{"name": s.name, "shape": list(s.maps.shape)} for s in found.stages]}
    record.update(output=out.output, loss_kind=out.loss_kind.value,
                  training=None if found.training is None else found.training.record())
    if found.kind == "table":
        record.update(input_names=found.input_names, seen=found.seen.reshape(-1).tolist(),
                      encoding="embedding" if found.layout is not None and found.layout.codes else "onehot")
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
