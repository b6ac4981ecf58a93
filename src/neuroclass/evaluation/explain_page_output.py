"""The explanation page's sections on the network's outputs: the probabilities, and the loss, its
gradient and one update. Two sets of numbers sit side by side on them, each under its own name:
the probabilities the run reports, p_T (with the run's calibration temperature T), and the
outputs the training loss reads (softmax(z), or the sigmoid outputs, with no temperature), which
the gradient step differentiates.
"""
from __future__ import annotations

import numpy as np

from neuroclass.evaluation.explain import CALIBRATED_LOSS, Explanation, loss_formula, own_loss_words
from neuroclass.evaluation.explain_format import number
from neuroclass.evaluation.explain_steps import RAW_NAMES, Loss, OutputStep, UpdateStep, raw_outputs
from neuroclass.evaluation.explain_training import setup_words
from neuroclass.evaluation.report.html import key_values, table

SHOWN_CLASSES = 20  # rows of the output and gradient tables


def output_section(found: Explanation) -> tuple[str, str]:
    """The "Output probabilities" section: (words, HTML)."""
    out, k = found.output, len(found.classes)
    order = np.argsort(-out.probabilities, kind="stable")
    if out.output == "sigmoid":
        columns, words = _sigmoid_columns(out, k)
    else:
        t = number(out.temperature)
        columns = [("logit z", out.logits), ("softmax(z) (T = 1)", out.raw),
                   (f"p_T = softmax(z / {t})", out.probabilities)]
        calibration = (f"The run was calibrated on its validation split: T = {t}, so p_T = softmax(z / {t})."
                       if out.temperature != 1.0 else
                       "The run has no calibration temperature: T = 1, and p_T = softmax(z).")
        words = (f"softmax turns the {k} logits into probabilities: p_T,k = exp(z_k / T) / sum_j exp(z_j / T). "
                 f"{calibration} The training loss and its gradient read softmax(z), without T.")
    if found.policy.tta != "none":
        columns.append(("Predictor (views)", found.predictor_probabilities))
    headers = ["class"] + [name for name, _ in columns]
    rows = [[found.classes[i] + (" (true)" if i == out.label else "")] + [number(v[i]) for _, v in columns]
            for i in order[:min(k, SHOWN_CLASSES)]]
    return words, table(headers, rows, numeric=set(range(1, len(headers))))


def _sigmoid_columns(out: OutputStep, k: int) -> tuple[list[tuple[str, np.ndarray]], str]:
    """The output table's columns and words for sigmoid outputs: each on its own, then divided by
    their sum (and calibrated), as the run's predictions make them."""
    shares = out.outputs / max(float(out.outputs.sum()), 1e-30)
    columns = [("weighted sum z", out.logits), ("a = sigmoid(z)", out.outputs), ("a / sum", shares)]
    words = (f"Each of the {k} output neurons squashes its weighted sum with the sigmoid, a_k = 1 / (1 + e^-z_k), "
             "on its own, so the outputs need not add up to 1; the run's predictions divide them by their sum, "
             "p_k = a_k / sum_j a_j")
    if out.temperature == 1.0:
        return columns, words + ". The run has no calibration temperature (T = 1): p_T = p. The training loss reads a."
    t = number(out.temperature)
    columns.append((f"p_T = softmax(log(a / sum) / {t})", out.probabilities))
    return columns, words + (f", then calibrate them with the validation split's T = {t}: p_T = softmax(log p / T). "
                             "The training loss reads a, without T.")


def gradient_section(found: Explanation) -> tuple[str, str]:
    """The "Loss, gradient and one update" section: (words, HTML)."""
    out, u, y = found.output, found.update, found.output.label
    k = len(found.classes)
    raw = RAW_NAMES[out.output]
    raw_after = raw_outputs(out.output, u.new_logits)
    if out.loss_kind is Loss.SQUARED_ERROR:
        low, high = out.targets
        signal = [("a = sigmoid(z)", out.raw), ("target", np.array([high if i == y else low for i in range(k)])),
                  ("dL/dz = (a - target) a (1 - a)", u.grad_logits)]
    else:
        signal = [(raw, out.raw), ("onehot", np.eye(k, dtype=np.int64)[y]),
                  (f"dL/dz = {raw} - onehot", u.grad_logits)]
    columns = signal + [("z after", u.new_logits), (f"{raw} after", raw_after),
                        ("p_T before", out.probabilities), ("p_T after", u.new_probabilities)]
    rows = [[found.classes[i]] + [number(values[i]) for _, values in columns]
            for i in np.argsort(-np.abs(u.grad_logits), kind="stable")[:SHOWN_CLASSES]]
    change = u.last_layer_change
    largest = np.argsort(-np.abs(u.grad_weight), axis=None, kind="stable")[:8]
    weights = [[found.classes[i], int(j), number(u.grad_weight[i, j]), number(change[i, j])]
               for i, j in zip(*np.unravel_index(largest, u.grad_weight.shape))]
    body = (key_values(_facts(found, raw_after)) + table(["class"] + [name for name, _ in columns], rows,
                                                         numeric=set(range(1, len(columns) + 1)))
            + "<h3>The largest entries of dL/dW = outer(dL/dz, a_prev)</h3>"
            + table(["class (row)", "input unit (column)", "dL/dW",
                     f"change by the {u.optimizer} step" if u.every_layer else "change -lr * dL/dW"],
                    weights, numeric={1, 2, 3}))
    return _gradient_words(found), body + _changes(u)


def _facts(found: Explanation, raw_after: np.ndarray) -> list[tuple[str, str]]:
    """The step's numbers before -> after: the training loss and the output it reads (no
    temperature), the calibrated loss and probability (T), the learning rate and optimiser."""
    out, u, y = found.output, found.update, found.output.label
    name, raw = found.classes[y], RAW_NAMES[out.output]
    calibrated_after = -float(np.log(max(float(u.new_probabilities[y]), 1e-300)))
    rate = "learning rate (the network's lr)" if u.every_layer else "learning rate (the run's optim.lr)"
    facts = [(f"training loss L = {loss_formula(out)}, before -> after", f"{number(u.loss)} -> {number(u.new_loss)}"),
             (f"{raw}[{name}] before -> after", f"{number(out.raw[y])} -> {number(raw_after[y])}"),
             (f"calibrated loss {CALIBRATED_LOSS} (T = {number(out.temperature)}), before -> after",
              f"{number(out.calibrated_loss)} -> {number(calibrated_after)}"),
             (f"p_T[{name}] before -> after", f"{number(out.probabilities[y])} -> {number(u.new_probabilities[y])}"),
             (rate, f"{u.lr:g}")]
    setup = found.training
    if setup is not None and setup.example_loss is not None:
        facts.insert(1, (f"{own_loss_words(found)}, before the step", number(setup.example_loss)))
    return facts + ([("optimiser", u.optimizer)] if u.every_layer else [])


def _changes(u: UpdateStep) -> str:
    """Each parameter's gradient and change, for a step that moves every layer."""
    if not u.changes:
        return ""
    rows = [[c.name, "x".join(map(str, c.shape)), number(c.largest_gradient), number(c.largest_change),
             number(c.mean_change)] for c in u.changes]
    return "<h3>What the step changed in each layer</h3>" + table(
        ["parameter", "shape", "largest |dL/dp|", "largest |change|", "mean |change|"], rows, numeric={2, 3, 4})


def _gradient_words(found: Explanation) -> str:
    out, u = found.output, found.update
    if out.loss_kind is Loss.SQUARED_ERROR:
        low, high = out.targets
        loss = (f"Training lowers the squared error between the sigmoid outputs a and their targets ({high:g} for "
                f"the true class, {low:g} for the others), without the calibration temperature. For the last layer "
                f"({found.head}) the gradient is dL/dz = (a - target) a (1 - a) for the weighted sums (the error "
                "times the sigmoid's slope)")
    else:
        loss = ("Training lowers the cross-entropy of the true class, L = -log softmax(z)[true], without the "
                f"calibration temperature. For the last layer ({found.head}) the gradient is "
                "dL/dz = softmax(z) - onehot(true) for the logits")
    loss += (" and dL/dW = outer(dL/dz, a_prev) for the weights (a_prev: the layer's input). p_T, the probabilities "
             "the run reports, and the calibrated loss -log p_T[true] are shown before and after the step beside it.")
    if not u.every_layer:
        setup = "" if found.training is None else (f", with {setup_words(found.training)}; the step here uses "
                                                   "the plain loss above: the summary's notes say what it leaves out")
        return loss + (" One plain step W -= lr * dL/dW, b -= lr * dL/dz is applied here and the outputs are "
                       "computed again with the new weights (training itself uses the run's optimizer, schedule and "
                       f"weight decay, over batches{setup}).")
    return loss + (f" Backpropagation carries dL/dz down through every layer; one step of the run's optimiser "
                   f"({u.optimizer}, learning rate {u.lr:g}) changes every weight and bias by what the network's own "
                   "gradients() reports for this example, and the network computes its outputs again with the new "
                   "weights.")
