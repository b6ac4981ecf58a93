"""Every number of one example's trip through the network, for a learner to look at: what each
dense layer received, its weighted sums, biases and activations, the output probabilities, the
loss, the gradient at the output, and what one update of the optimiser would change.

>>> from neuroclass.glassbox.network import Network
>>> from neuroclass.glassbox.options import glassbox_options
>>> net = Network(glassbox_options({"hidden": [8]}), n_inputs=4, n_classes=3, seed=0)
>>> [(t.name, t.activation, t.z.shape) for t in net.trace(np.ones(4))]
[('dense0', 'relu', (8,)), ('dense1', 'softmax', (3,))]
>>> step = net.gradients(np.ones(4), 2)
>>> sorted(step.gradients) == sorted(step.updates) == ['dense0.bias', 'dense0.weight', 'dense1.bias', 'dense1.weight']
True
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from neuroclass.glassbox import inputs
from neuroclass.glassbox.layers import BatchNorm, Dense, Dropout

if TYPE_CHECKING:  # network.py imports this module: its methods trace() and gradients() call here
    from neuroclass.glassbox.network import Network


@dataclass(frozen=True)
class LayerTrace:
    """One dense layer's numbers for one example, all float32 copies.

    ``inputs`` (D_in,): what the layer received; ``weighted_sum`` (D_out,): x . W[:, j] for each
    neuron j; ``bias`` (D_out,); ``z`` = weighted_sum + bias; ``normalized``: z after batch
    normalisation (None without it); ``a``: the activation (``activation`` names it: relu,
    sigmoid, tanh, or the output's softmax / sigmoid).
    """

    name: str
    activation: str
    inputs: np.ndarray
    weighted_sum: np.ndarray
    bias: np.ndarray
    z: np.ndarray
    normalized: Optional[np.ndarray]
    a: np.ndarray

    def most_active(self, k: int = 5) -> np.ndarray:
        """The indices of the ``k`` neurons of the highest activation, highest first (int64)."""
        return np.argsort(-self.a, kind="stable")[:k].astype(np.int64)


@dataclass(frozen=True)
class GradientTrace:
    """The loss of one example and its gradients, the network left as it was.

    ``loss``: the example's loss; ``outputs`` (K,): the output layer's activations;
    ``probabilities`` (K,): the same, summing to 1; ``output_delta`` (K,): dL/dz of the output
    layer, the error signal backpropagation starts from (p - onehot(y) for softmax cross-entropy;
    (a - target) a (1 - a) for sigmoid outputs and squared error); ``gradients``: dL/d(parameter)
    by name, before any penalty; ``updates``: the change one step of the network's optimiser
    (with its learning rate, its penalties and its state so far) would make to each parameter.
    """

    loss: float
    label: int
    outputs: np.ndarray
    probabilities: np.ndarray
    output_delta: np.ndarray
    gradients: dict
    updates: dict


def trace(network: "Network", x: np.ndarray) -> list[LayerTrace]:
    """Each dense layer's numbers (``LayerTrace``) for one example ``x``, (D,) or (1, D), in
    evaluation mode. Raises NeuroclassError for a bad example (``inputs.one_row``)."""
    h = inputs.one_row(x, network.n_inputs)
    found: list[dict] = []
    for layer in network.layers:
        if isinstance(layer, Dense):
            found.append({"name": layer.name, "inputs": h[0].copy(), "weighted_sum": (h @ layer.weight)[0],
                          "bias": layer.bias.copy(), "normalized": None})
        h = layer.forward(h, train=False)
        if isinstance(layer, Dense):
            found[-1]["z"] = h[0].copy()
        elif isinstance(layer, BatchNorm):
            found[-1]["normalized"] = h[0].copy()
        elif not isinstance(layer, Dropout):
            found[-1].update(a=h[0].copy(), activation=network.options.activation)
    found[-1].update(a=network.output.forward(h, False)[0].copy(), activation=network.options.output)
    return [LayerTrace(**record) for record in found]


def gradients(network: "Network", x: np.ndarray, y: int) -> GradientTrace:
    """The loss, gradients and would-be update of one example ``x`` (D,) of class ``y``, in
    evaluation mode (no dropout; batch normalisation's running statistics), leaving the weights,
    the running statistics and the optimiser's state as they were. Raises NeuroclassError for a
    bad example or label."""
    xb = inputs.one_row(x, network.n_inputs)
    yb = inputs.labels(np.asarray([y]).reshape(-1), 1, network.n_classes, "y")
    loss, delta = network.loss_gradient(xb, yb, train=False)
    network.backward(delta)
    outputs = network.output.forward(network.logits(xb), False)[0].copy()  # (K,), after backward used the caches
    grads = {p.name: p.grad.copy() for p in network.params}
    # one step of a copy of the optimiser on copies of the parameters: its state moves, not the network's
    trial = network.params.copied()  # laid out as the network's: the optimiser's state fits them
    copy.deepcopy(network.optimizer).step(trial)
    updates = {p.name: t.value - p.value for p, t in zip(network.params, trial)}
    probabilities = outputs / max(float(outputs.sum()), 1e-30)
    return GradientTrace(loss, int(yb[0]), outputs, probabilities.astype(np.float32), delta[0].copy(), grads,
                         updates)
