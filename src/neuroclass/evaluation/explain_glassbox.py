"""``explain`` for a run of the ``glassbox`` family: the page a torch network gets, filled from
the NumPy network's own numbers (neuroclass.glassbox).

``Network.trace`` gives each dense layer's input, weighted sums, biases, batch normalisation and
activations; ``Network.gradients`` the run's own loss (softmax cross-entropy, or the classic squared
error of sigmoid outputs against targets such as 0.01 / 0.99), the output layer's error signal, every
parameter's gradient and the change one step of the run's optimiser would make. The update shown
applies those changes to a copy of the network and runs the input through the copy again. The
attribution maps go back through the network's own layers (each one's ``backward``), in NumPy:
Captum needs torch autograd, which a NumPy forward pass does not have.

Example::

    found = explain_run("runs/digits-glassbox-20260101-120000", index=0)
    found.update.optimizer, found.output.loss_kind
    # -> ('adam', <Loss.CROSS_ENTROPY: 'cross_entropy'>)
"""
from __future__ import annotations

import copy

import numpy as np

from neuroclass.evaluation.explain import Explanation, page_notes
from neuroclass.evaluation.explain_attribution import IG_STEPS, Attribution
from neuroclass.evaluation.explain_input import Example, baseline_words, input_names, pixels
from neuroclass.evaluation.explain_steps import (DenseLayer, Loss, OutputStep, ParamChange, UpdateStep, dense_step,
                                                 softmax)
from neuroclass.evaluation.explain_table import table_layout
from neuroclass.evaluation.explain_trace import FirstLayer
from neuroclass.glassbox import GradientTrace, LayerTrace, Network
from neuroclass.glassbox.layers import BatchNorm, Dense
from neuroclass.inference import Predictor
from neuroclass.runs import RunFolder
from neuroclass.runs.glassbox_module import GLASSBOX, input_rows

TOP_UNITS = 5  # units of each layer shown in detail, the most active first
TERMS = 8  # inputs w_i * x_i shown per unit
TEMPLATES = 16  # first-layer weight templates shown
STATEFUL = ("momentum", "rmsprop", "adam")  # optimisers whose step depends on running averages


def explain_glassbox(folder: RunFolder, predictor: Predictor, example: Example, attribution: str) -> Explanation:
    """The explanation of ``example`` by the glass-box run ``folder`` (its Predictor's model is a
    GlassboxModule); ``attribution``: "integrated_gradients" or "saliency", checked by the caller."""
    network: Network = predictor.model.network
    shape = tuple(predictor.meta["input_shape"])
    row = input_rows(predictor.model_inputs(example.x))[0]  # (D,) float32: what the network takes in
    traces = network.trace(row)
    grads = None if example.label is None else network.gradients(row, example.label)
    temperature = predictor.policy.temperature
    output = output_of(network, row, traces[-1], grads, temperature, example.label)
    targets = {"predicted": output.predicted}
    if example.label is not None and example.label != output.predicted:
        targets["true"] = example.label
    image = len(shape) == 3
    first = traces[0]
    preprocessing = predictor.meta.get("preprocessing", {})
    layout = None if image else table_layout(preprocessing, row.shape[0], None)
    found = Explanation(
        run=folder.path, family=predictor.meta.get("family", GLASSBOX), kind=predictor.kind, source=example.source,
        slug=example.slug, classes=list(predictor.classes), raw=pixels(example.x), seen=row.reshape(shape),
        input_names=input_names(shape, preprocessing) if image else layout.input_names(row),
        dense=dense_layers(network, traces), output=output,
        predictor_probabilities=np.asarray(predictor.predict_proba_tensor(example.x)[0], dtype=np.float64),
        policy=predictor.policy, update=None if grads is None else update_of(network, row, grads, temperature),
        head=traces[-1].name,
        first=FirstLayer(first.name, "dense", _dense(network, first.name).weight.T.copy(),
                         tuple(int(i) for i in first.most_active(TEMPLATES))) if image else None,
        stages=[], attributions=input_maps(network, row, targets, attribution, baseline_words(predictor.kind), shape),
        standardized=False, numpy_network=True, layout=layout, row=example.row)
    found.notes = page_notes(found, None) + _notes(found)
    return found


def _dense(network: Network, name: str) -> Dense:
    return next(layer for layer in network.layers if layer.name == name)


def dense_layers(network: Network, traces: list[LayerTrace], top: int = TOP_UNITS,
                 terms: int = TERMS) -> list[DenseLayer]:
    """Each dense layer's step (explain_steps.dense_step) for the input it received in the trace,
    showing the ``top`` units ``LayerTrace.most_active`` names; batch normalisation at inference
    folded into a per-unit scale and shift; the last layer's activation the output sigmoid, or
    none before a softmax (its z are the logits)."""
    out = []
    for k, trace in enumerate(traces):
        last = k == len(traces) - 1
        dense = _dense(network, trace.name)
        following = _following(network, dense)
        norm = next((layer for layer in following if isinstance(layer, BatchNorm)), None)
        scale, shift = (None, None) if norm is None else _folded(norm)
        sigmoid_out = last and network.options.output == "sigmoid"
        activation = trace.activation if not last else ("sigmoid" if sigmoid_out else "identity")
        step = dense_step(dense.weight.T, dense.bias, trace.inputs, activation, scale, shift, name=trace.name,
                          terms=terms, units=[int(i) for i in trace.most_active(top)])
        after = tuple(f"{layer.name} {type(layer).__name__}" for layer in following)
        after += ("sigmoid: the output layer's activation",) if sigmoid_out else ()
        matches = None if last else bool(np.allclose(step.a, traces[k + 1].inputs, rtol=1e-4, atol=1e-5))
        out.append(DenseLayer(step, after, matches))
    return out


def _following(network: Network, dense: Dense) -> list:
    """The layers after ``dense`` up to the next dense layer (batch norm, activation, dropout)."""
    start = network.layers.index(dense) + 1
    end = next((i for i in range(start, len(network.layers)) if isinstance(network.layers[i], Dense)),
               len(network.layers))
    return network.layers[start:end]


def _folded(norm: BatchNorm) -> tuple[np.ndarray, np.ndarray]:
    """Batch normalisation at inference as scale * z + shift: gamma / sqrt(var + eps) and
    beta - mean * scale, from the running statistics."""
    scale = norm.weight.astype(np.float64) / np.sqrt(norm.running_var.astype(np.float64) + norm.eps)
    return scale, norm.bias.astype(np.float64) - norm.running_mean.astype(np.float64) * scale


def probabilities_of(network: Network, row: np.ndarray, temperature: float) -> np.ndarray:
    """What the run's inference path reports for one input ``row`` (D,) float32: the network's
    log-probabilities (``Network.log_proba``, exact from the logits, as GlassboxModule gives them:
    softmax outputs, or sigmoid outputs divided by their sum), softmax with the run's calibration
    ``temperature``; float64 (K,) summing to 1.

    >>> from neuroclass.glassbox import glassbox_options
    >>> net = Network(glassbox_options({"hidden": []}), n_inputs=2, n_classes=3)
    >>> probabilities_of(net, np.zeros(2, np.float32), 1.0).round(4).tolist()
    [0.3333, 0.3333, 0.3333]
    """
    return softmax(network.log_proba(row[None])[0], temperature)


def output_of(network: Network, row: np.ndarray, last: LayerTrace, grads: GradientTrace | None,
              temperature: float, label: int | None) -> OutputStep:
    """The output step for input ``row`` (D,) from the last layer's trace (its z are the logits)
    and, with a label, the run's own loss as ``Network.gradients`` computed it."""
    options = network.options
    probabilities = probabilities_of(network, row, temperature)
    loss_kind = Loss(options.loss)
    loss = None if grads is None else float(grads.loss)
    calibrated = None if label is None else -float(np.log(probabilities[label]))
    return OutputStep(last.z.astype(np.float64), float(temperature), probabilities, int(np.argmax(probabilities)),
                      None if label is None else int(label), loss, calibrated, output=options.output,
                      outputs=last.a.astype(np.float64) if options.output == "sigmoid" else None, loss_kind=loss_kind,
                      targets=tuple(options.targets) if loss_kind is Loss.SQUARED_ERROR else None)


def update_of(network: Network, row: np.ndarray, grads: GradientTrace, temperature: float) -> UpdateStep:
    """One step of the run's optimiser on every parameter, as ``grads.updates`` says, applied to a
    copy of ``network``; the copy's output for ``row`` (D,) is what the page shows after it."""
    trial = copy.deepcopy(network)  # a Param's value is its layer's array: adding to it moves the layer
    for p in trial.params:
        p.value += grads.updates[p.name]
    after = trial.trace(row)[-1]
    new_loss, _ = trial.evaluate(row[None], np.asarray([grads.label]))
    head, name = _dense(trial, after.name), after.name
    changes = tuple(_change(p.name, grads) for p in network.params)
    f64 = np.float64
    return UpdateStep(
        float(network.options.lr), grads.output_delta.astype(f64), grads.gradients[f"{name}.weight"].T.astype(f64),
        grads.gradients[f"{name}.bias"].astype(f64), head.weight.T.astype(f64), head.bias.astype(f64),
        after.z.astype(f64), probabilities_of(trial, row, temperature), float(grads.loss), float(new_loss),
        optimizer=network.options.optimizer, every_layer=True,
        weight_change=grads.updates[f"{name}.weight"].T.astype(f64), changes=changes)


def _change(name: str, grads: GradientTrace) -> ParamChange:
    gradient, update = np.abs(grads.gradients[name]), np.abs(grads.updates[name])
    return ParamChange(name, tuple(update.shape), float(gradient.max()), float(update.max()), float(update.mean()))


# ----------------------------------------------------------------------------- attribution maps

def input_gradients(network: Network, rows: np.ndarray, target: int) -> np.ndarray:
    """dz_target / dx for each row of ``rows`` (N, D) float32: the output layer's weighted sum of
    class ``target`` differentiated through each layer's own ``backward``, last to first, in
    evaluation mode; (N, D) float32. The first dense layer skips its input gradient in training
    (its inputs are the data), so its step dL/dx = dL/dz W^T is taken here. Writes the parameters'
    gradient buffers, as any backward pass does; the weights stay as they are."""
    z = network.logits(rows)  # (N, K); each layer keeps what its backward needs
    grad = np.zeros_like(z)
    grad[:, target] = 1.0
    first, *rest = network.layers
    for layer in reversed(rest):
        grad = layer.backward(grad)
    return grad @ first.weight.T  # (N, D_out) @ (D_out, D) -> (N, D)


def input_maps(network: Network, row: np.ndarray, targets: dict[str, int], method: str, baseline_words: str,
               shape: tuple[int, ...]) -> list[Attribution]:
    """A map of ``shape`` for each (role, class index) of ``targets``: ``method`` "saliency" (the
    absolute gradient of the class's logit at the input) or "integrated_gradients" (from the input
    of zeros, described by ``baseline_words``, IG_STEPS midpoints of the straight path)."""
    x = row.astype(np.float32)[None]  # (1, D)
    base = np.zeros_like(x)
    out = []
    for role, target in targets.items():
        if method == "saliency":
            values = np.abs(input_gradients(network, x, target)[0])
            detail = ("absolute gradient of the class's logit at the input: one backward pass through the network's "
                      "own layers, in NumPy")
            name = "saliency"
        else:
            alphas = ((np.arange(IG_STEPS) + 0.5) / IG_STEPS).astype(np.float32)[:, None]  # (S, 1)
            path = base + alphas * (x - base)  # (S, D)
            values = ((x - base) * input_gradients(network, path, target).mean(axis=0))[0]
            ends = network.logits(np.concatenate([x, base]))[:, target]
            gap = abs(float(values.sum()) - float(ends[0] - ends[1]))
            detail = (f"{IG_STEPS} midpoints of the path from {baseline_words}, each a backward pass through the "
                      f"network's own layers in NumPy; the attributions add up to the logit's change within {gap:.2g}")
            name = "integrated gradients"
        out.append(Attribution(name, int(target), role, values.reshape(shape).astype(np.float32), detail))
    return out


def _notes(found: Explanation) -> list[str]:
    """What the glass-box page adds to the notes: the optimiser's state the step starts from."""
    u = found.update
    if u is None or u.optimizer not in STATEFUL:
        return []
    return [f"a run folder keeps the network's weights, not its {u.optimizer} optimiser's running averages: the "
            "update shown is the first step of a fresh optimiser, as at the start of training"]
