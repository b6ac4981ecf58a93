"""Checks shared by the explain tests: every number an explanation shows follows the formula the
page prints beside it, and the page and the terminal print those numbers."""
import html
import re

import numpy as np

from neuroclass.evaluation.explain import summary_lines
from neuroclass.evaluation.explain_format import number
from neuroclass.evaluation.explain_steps import Loss, activate, softmax

NEGATIVE_ZERO = re.compile(r"-0\.0+(?![0-9e])")  # "-0.0000": a zero with a sign, or a small number lost


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def _calibrated(out, logits):
    """p_T as the page writes it: softmax(z / T), or softmax(log(a / sum a) / T) of sigmoid outputs."""
    if out.output == "sigmoid":
        a = _sigmoid(logits)
        return softmax(np.log(a / a.sum()), out.temperature)
    return softmax(logits, out.temperature)


def _training_loss(out, logits):
    """The training loss the page writes: -log softmax(z)[true], or 1/2 sum_k (sigmoid(z_k) - target_k)^2."""
    if out.loss_kind is Loss.SQUARED_ERROR:
        low, high = out.targets
        target = np.full(len(logits), low)
        target[out.label] = high
        return 0.5 * float(np.sum((_sigmoid(logits) - target) ** 2))
    return -float(np.log(softmax(logits)[out.label]))


def check_formulas(found, document: str, tol: float = 1e-4) -> None:
    """Assert that ``found``'s numbers follow the formulas its page (``document``) shows, and that
    the page and the terminal lines print them."""
    document = html.unescape(document)
    for layer in found.dense:  # z = sum_i w_i x_i + b, a = f(scale z + shift)
        for n in layer.step.neurons:
            assert abs(n.z - (n.weighted_sum + n.bias)) <= tol * max(1.0, abs(n.z))
            assert abs(sum(t.product for t in n.terms) + n.rest - n.weighted_sum) <= tol * max(1.0, abs(n.z))
            inner = n.z if n.normalised is None else n.normalised
            assert abs(float(activate(layer.step.activation, np.array([inner]))[0]) - n.a) <= tol
    lines = "\n".join(summary_lines(found))
    assert not NEGATIVE_ZERO.search(document) and not NEGATIVE_ZERO.search(lines)
    out = found.output
    np.testing.assert_allclose(out.probabilities, _calibrated(out, out.logits), rtol=tol, atol=1e-6)
    assert f"T = {number(out.temperature)}" in document
    if out.label is None:
        return
    y = out.label
    assert abs(out.loss - _training_loss(out, out.logits)) <= tol * max(1.0, out.loss)
    assert abs(out.calibrated_loss + np.log(out.probabilities[y])) <= tol
    assert f"= {number(out.loss)}" in lines and f"-log p_T[{found.classes[y]}] = {number(out.calibrated_loss)}" in lines
    assert number(out.loss) in document and number(out.calibrated_loss) in document
    u = found.update
    if u is None:
        return
    if out.loss_kind is Loss.SQUARED_ERROR:  # dL/dz = (a - target) a (1 - a)
        low, high = out.targets
        a = out.outputs
        target = np.full(len(a), low)
        target[y] = high
        np.testing.assert_allclose(u.grad_logits, (a - target) * a * (1 - a), rtol=1e-3, atol=1e-7)
        assert "dL/dz = (a - target) a (1 - a)" in document
    else:  # dL/dz = softmax(z) - onehot, with no temperature
        np.testing.assert_allclose(u.grad_logits, softmax(out.logits) - np.eye(len(out.logits))[y], rtol=1e-3,
                                   atol=1e-6)
        assert "dL/dz = softmax(z) - onehot" in document
    np.testing.assert_allclose(u.grad_weight, np.outer(u.grad_logits, found.dense[-1].step.x), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(u.new_probabilities, _calibrated(out, u.new_logits), rtol=1e-3, atol=1e-6)
    assert abs(u.new_loss - _training_loss(out, u.new_logits)) <= 1e-3 * max(1.0, u.new_loss)
    assert abs(u.loss - out.loss) <= tol * max(1.0, out.loss)
    before_after = f"{number(u.loss)} -> {number(u.new_loss)}"
    assert before_after in document and before_after in lines
    p_before_after = f"{number(out.probabilities[y])} -> {number(u.new_probabilities[y])}"
    assert p_before_after in document and p_before_after in lines
