"""One prediction of a dense network, step by step, in NumPy: a layer's weighted sums and what each
input adds to them, the activation, softmax with a temperature, the cross-entropy loss, the
gradient of that loss for the last layer, and the probabilities after one gradient step.

Everything here takes and returns NumPy arrays (weights ``W`` (units, inputs), biases ``b``
(units,), inputs ``x`` (inputs,), an activation by name), so that any network whose layers can be
read as arrays shows the same steps: a neuroclass mlp (explain_trace.py reads its layers) or a
network written in NumPy alone. Arithmetic is in float64; results are float64 arrays.

Example::

    step = dense_step(W, b, x, "relu")
    step.neurons[0].z == step.neurons[0].weighted_sum + step.neurons[0].bias
    # -> True
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from neuroclass.errors import NeuroclassError

LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default negative slope
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(z: np.ndarray) -> np.ndarray:
    return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))  # the exact GELU, as nn.GELU computes it


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), without overflow for large |z|


ACTIVATION_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "gelu": _gelu,
    "leaky_relu": lambda z: np.where(z >= 0, z, LEAKY_SLOPE * z),
    "silu": lambda z: z * _sigmoid(z),
    "identity": lambda z: z,
}


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """The activation ``name`` (a key of ACTIVATION_FUNCTIONS) of pre-activations ``z``, float64,
    same shape. Raises NeuroclassError for an unknown name.

    >>> activate("relu", np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    if name not in ACTIVATION_FUNCTIONS:
        raise NeuroclassError(f"activation '{name}': not one of {', '.join(ACTIVATION_FUNCTIONS)}")
    return ACTIVATION_FUNCTIONS[name](np.asarray(z, dtype=np.float64))


def softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(z / temperature) over the last axis, float64; each row sums to 1.

    >>> softmax(np.array([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    scaled = np.asarray(z, dtype=np.float64) / temperature
    shifted = np.exp(scaled - scaled.max(axis=-1, keepdims=True))  # no overflow
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Term:
    """One input's share of a neuron's weighted sum: ``weight * value``."""

    index: int  # which input (a pixel, a feature, a unit of the layer below)
    weight: float
    value: float

    @property
    def product(self) -> float:
        return self.weight * self.value


@dataclass(frozen=True)
class Neuron:
    """One unit of a dense layer: z = weighted_sum + bias = sum_i w_i x_i + b; ``normalised`` =
    scale * z + shift (batch normalisation at inference; None without it); a = activation of
    ``normalised`` (or of z). ``terms``: the inputs whose |w_i x_i| are largest, largest first;
    ``rest``: the sum of all other terms, so that sum(terms) + rest == weighted_sum."""

    index: int
    weighted_sum: float
    bias: float
    z: float
    normalised: float | None
    a: float
    terms: tuple[Term, ...]
    rest: float


@dataclass(frozen=True)
class DenseStep:
    """A dense layer's step for one input: pre-activations ``z`` (units,), after the optional
    per-unit ``scale`` / ``shift`` (batch normalisation folded at inference), activations ``a``
    (units,), float64; ``neurons``: the units shown in detail (the most active first)."""

    name: str
    activation: str
    x: np.ndarray  # (inputs,) what the layer receives
    z: np.ndarray  # (units,) W x + b
    a: np.ndarray  # (units,)
    neurons: tuple[Neuron, ...]
    scale: np.ndarray | None = None  # (units,)
    shift: np.ndarray | None = None  # (units,)

    @property
    def units(self) -> int:
        return int(self.z.shape[0])

    @property
    def inputs(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class DenseLayer:
    """A dense layer of a network as the page shows it: ``step`` computed from its weights and the
    input it received; ``after``: what comes between it and the next dense layer, in words (a torch
    network's module paths and types, e.g. "layers.2 BatchNorm1d"; () when ``step`` says it all);
    ``matches``: the step's activations equal what the next dense layer received (None when that
    was not checked, or for the last layer)."""

    step: DenseStep
    after: tuple[str, ...]
    matches: bool | None


def dense_step(weight: np.ndarray, bias: np.ndarray | None, x: np.ndarray, activation: str,
               scale: np.ndarray | None = None, shift: np.ndarray | None = None, name: str = "",
               top: int = 5, terms: int = 8, units: Sequence[int] | None = None) -> DenseStep:
    """A dense layer ``a = activation(scale * (W x + b) + shift)`` for one input.

    ``weight``: (units, inputs); ``bias``: (units,) or None (zeros); ``x``: (inputs,); ``scale`` /
    ``shift``: (units,) or None (batch normalisation at inference: gamma / sqrt(var + eps) and
    beta - mean * scale). Shows ``units`` in detail when given, else the ``top`` most active
    (largest a); each with its ``terms`` largest |w_i x_i|. Raises NeuroclassError for shapes that
    do not fit together.

    >>> step = dense_step(np.array([[1.0, -2.0]]), np.array([0.5]), np.array([3.0, 1.0]), "relu")
    >>> step.z.tolist(), step.a.tolist(), step.neurons[0].terms[0].product
    ([1.5], [1.5], 3.0)
    """
    w = np.asarray(weight, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if w.ndim != 2 or w.shape[1] != x.shape[0]:
        raise NeuroclassError(f"dense layer {name or ''}: weights of shape {w.shape} cannot take "
                              f"{x.shape[0]} inputs; give W as (units, inputs)")
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    z = w @ x + b
    normalised = z if scale is None else z * np.asarray(scale, np.float64) + np.asarray(shift, np.float64)
    a = activate(activation, normalised)
    chosen = list(units) if units is not None else list(np.argsort(-a, kind="stable")[:top])
    neurons = tuple(_neuron(int(j), w[j], b[j], x, z[j], None if scale is None else normalised[j], a[j], terms)
                    for j in chosen)
    return DenseStep(name, activation, x, z, a, neurons,
                     None if scale is None else np.asarray(scale, np.float64),
                     None if shift is None else np.asarray(shift, np.float64))


def _neuron(j: int, w: np.ndarray, b: float, x: np.ndarray, z: float, normalised: float | None,
            a: float, count: int) -> Neuron:
    products = w * x  # (inputs,)
    order = np.argsort(-np.abs(products), kind="stable")[:count]
    shown = tuple(Term(int(i), float(w[i]), float(x[i])) for i in order)
    total = float(products.sum())
    return Neuron(j, total, float(b), float(z), None if normalised is None else float(normalised),
                  float(a), shown, total - float(products[order].sum()))


class Loss(enum.Enum):
    """The training loss an OutputStep reports and an UpdateStep differentiates."""

    CROSS_ENTROPY = "cross_entropy"  # -log softmax(z)[label]
    SQUARED_ERROR = "mse"  # 1/2 sum_k (a_k - target_k)^2 of sigmoid outputs a = sigmoid(z)


@dataclass(frozen=True)
class OutputStep:
    """The network's outputs turned into probabilities: ``logits`` (K,), ``temperature`` (the run's
    calibration, 1.0 when it has none), ``probabilities`` = softmax(logits / temperature) (what
    predictions report), ``predicted`` their argmax; with a ``label``: ``loss`` = -log
    softmax(logits)[label] (the cross-entropy training minimises, without the temperature) and
    ``calibrated_loss`` = -log probabilities[label].

    A network with sigmoid outputs (``output`` "sigmoid"; ``outputs`` (K,) = sigmoid(logits))
    reports ``probabilities`` = the outputs divided by their sum, then the temperature
    (softmax(log(outputs / sum) / temperature)); its ``loss`` is then ``loss_kind``'s, e.g. the
    squared error against ``targets`` (wrong class, true class)."""

    logits: np.ndarray
    temperature: float
    probabilities: np.ndarray
    predicted: int
    label: int | None
    loss: float | None
    calibrated_loss: float | None
    output: str = "softmax"  # "softmax" or "sigmoid": how the logits become the outputs
    outputs: np.ndarray | None = None  # (K,) the sigmoid outputs; None for softmax
    loss_kind: Loss = Loss.CROSS_ENTROPY
    targets: tuple[float, float] | None = None  # Loss.SQUARED_ERROR's (wrong class, true class)

    @property
    def raw(self) -> np.ndarray:
        """(K,) float64: the outputs the training loss reads, without the temperature: softmax(logits),
        or the sigmoid outputs."""
        return self.outputs if self.output == "sigmoid" else softmax(self.logits)


RAW_NAMES = {"softmax": "softmax(z)", "sigmoid": "sigmoid(z)"}  # OutputStep.output -> what ``raw`` is


def raw_outputs(output: str, logits: np.ndarray) -> np.ndarray:
    """What the training loss reads from ``logits`` (K,) for outputs of kind ``output``
    ("softmax" or "sigmoid"), without any temperature; float64 (K,).

    >>> raw_outputs("sigmoid", np.zeros(2)).tolist(), raw_outputs("softmax", np.zeros(2)).tolist()
    ([0.5, 0.5], [0.5, 0.5])
    """
    return _sigmoid(np.asarray(logits, np.float64)) if output == "sigmoid" else softmax(logits)


def output_step(logits: np.ndarray, temperature: float = 1.0, label: int | None = None) -> OutputStep:
    """Probabilities and loss of one example's ``logits`` (K,).

    >>> round(output_step(np.array([0.0, 0.0]), 1.0, 1).loss, 4)
    0.6931
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    p = softmax(z, temperature)
    if label is None:
        return OutputStep(z, float(temperature), p, int(np.argmax(p)), None, None, None)
    loss = -float(np.log(softmax(z)[label]))
    return OutputStep(z, float(temperature), p, int(np.argmax(p)), int(label), loss, -float(np.log(p[label])))


@dataclass(frozen=True)
class UpdateStep:
    """One plain gradient step on the last layer for one example, from the training loss
    L = -log softmax(z)[label] with z = W a + b:
    dL/dz = p - onehot(label) (K,); dL/dW = outer(dL/dz, a) (K, D); dL/db = dL/dz;
    W' = W - lr dL/dW, b' = b - lr dL/db; ``new_logits`` = W' a + b' (computed with the new
    weights); ``new_probabilities`` = softmax(new_logits / temperature).

    With ``every_layer``, the step is ``optimizer``'s (sgd, momentum, rmsprop, adam) on every
    parameter of the network for the run's loss: ``grad_logits`` is dL/dz of the last layer,
    ``new_weight`` / ``new_bias`` that layer's after the step, ``new_logits`` and
    ``new_probabilities`` the whole network's for the same input after it, ``changes`` each
    parameter's (ParamChange)."""

    lr: float
    grad_logits: np.ndarray  # (K,)
    grad_weight: np.ndarray  # (K, D)
    grad_bias: np.ndarray  # (K,)
    new_weight: np.ndarray  # (K, D)
    new_bias: np.ndarray  # (K,)
    new_logits: np.ndarray  # (K,)
    new_probabilities: np.ndarray  # (K,) with the temperature
    loss: float
    new_loss: float  # the training loss after the step
    # a network that moves every layer in the step (with its own optimiser, e.g. Adam), rather
    # than the last layer alone by plain gradient descent: which rule, and each parameter's change
    optimizer: str = "sgd"
    every_layer: bool = False
    weight_change: np.ndarray | None = None  # (K, D) the last layer's W' - W; None: -lr * grad_weight
    changes: tuple["ParamChange", ...] = ()

    @property
    def last_layer_change(self) -> np.ndarray:
        """W' - W of the last layer (K, D) float64."""
        return -self.lr * self.grad_weight if self.weight_change is None else self.weight_change


@dataclass(frozen=True)
class ParamChange:
    """One parameter's share of a step: its ``name`` and ``shape``, the largest |dL/dparameter|
    and the largest and mean |change| the step made to it."""

    name: str
    shape: tuple[int, ...]
    largest_gradient: float
    largest_change: float
    mean_change: float


def last_layer_update(weight: np.ndarray, bias: np.ndarray | None, a_prev: np.ndarray, label: int,
                      lr: float, temperature: float = 1.0) -> UpdateStep:
    """The gradient of the softmax cross-entropy for the last layer (``weight`` (K, D), ``bias``
    (K,) or None, its input ``a_prev`` (D,)) at class ``label``, and one step of size ``lr``.
    Raises NeuroclassError for a label outside 0..K-1 or lr <= 0.

    >>> step = last_layer_update(np.eye(2), np.zeros(2), np.array([1.0, 0.0]), 1, 0.5)
    >>> step.grad_logits.round(3).tolist(), step.new_loss < step.loss
    ([0.731, -0.731], True)
    """
    w = np.asarray(weight, dtype=np.float64)
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    a = np.asarray(a_prev, dtype=np.float64).reshape(-1)
    if not 0 <= label < w.shape[0]:
        raise NeuroclassError(f"label {label}: not a class of this layer's {w.shape[0]} outputs")
    if not lr > 0:
        raise NeuroclassError(f"learning rate must be > 0. Got {lr} instead.")
    z = w @ a + b
    p = softmax(z)
    grad_z = p.copy()
    grad_z[label] -= 1.0  # dL/dz = p - onehot
    grad_w = np.outer(grad_z, a)
    new_w, new_b = w - lr * grad_w, b - lr * grad_z
    new_z = new_w @ a + new_b
    return UpdateStep(float(lr), grad_z, grad_w, grad_z.copy(), new_w, new_b, new_z,
                      softmax(new_z, temperature), -float(np.log(p[label])),
                      -float(np.log(softmax(new_z)[label])))
