"""The glass-box network's options: one frozen dataclass whose fields carry their rules, and two
presets that are nothing but values of those fields.

``classic`` is the from-scratch digit network of the classic explainers (Rashid, "Make Your Own
Neural Network", 2016; Nielsen, "Neural Networks and Deep Learning", ch. 1-2): 784-200-10, sigmoid
everywhere (the output too), targets 0.01 / 0.99, squared error (its gradient: output - target),
one example per update, plain gradient descent with a learning rate of 0.1. ``modern`` is what a
network of the same shape is trained with today: ReLU, softmax with cross-entropy, Adam, batches of
128, He initialisation. The dataclass's defaults are the modern preset.

>>> glassbox_options({"preset": "classic"}).activation
'sigmoid'
>>> glassbox_options({"preset": "classic", "lr": 0.2}).lr
0.2
>>> glassbox_options({"activaton": "relu"})
Traceback (most recent call last):
neuroclass.errors.NeuroclassError: unknown config key 'model.options.activaton'. Did you mean 'model.options.activation'? Valid keys here: preset, hidden, activation, output, loss, targets, optimizer, lr, momentum, l1, l2, dropout, batch_norm, init, batch_size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from neuroclass.errors import NeuroclassError
from neuroclass.rules import build_dataclass, rule

ACTIVATIONS = ("relu", "sigmoid", "tanh")
OUTPUTS = ("softmax", "sigmoid")
LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
INITS = ("he", "xavier", "normal")

# The presets: values of GlassboxOptions' fields, merged under the values a caller gives.
PRESETS: dict[str, dict] = {
    "modern": {"hidden": [200], "activation": "relu", "output": "softmax", "loss": "cross_entropy",
               "targets": [0.0, 1.0], "optimizer": "adam", "lr": 1e-3, "init": "he", "batch_size": 128},
    "classic": {"hidden": [200], "activation": "sigmoid", "output": "sigmoid", "loss": "mse",
                "targets": [0.01, 0.99], "optimizer": "sgd", "lr": 0.1, "init": "normal", "batch_size": 1},
}


@dataclass(frozen=True)
class GlassboxOptions:
    """How the glass-box network is built and trained (``model.options.*``).

    Raises NeuroclassError from ``validate`` when two fields contradict each other.
    """

    preset: str = field(default="modern", metadata=rule(choices=tuple(PRESETS)))
    # neurons of each hidden layer, input side first; [] is a softmax (logistic) regression
    hidden: list[int] = field(default_factory=lambda: [200], metadata=rule(gt=0))
    activation: str = field(default="relu", metadata=rule(choices=ACTIVATIONS))  # hidden layers
    output: str = field(default="softmax", metadata=rule(choices=OUTPUTS))  # the last layer's
    loss: str = field(default="cross_entropy", metadata=rule(choices=LOSSES))
    # the target values of the wrong classes and of the right one for loss=mse: an output sigmoid
    # never reaches 0 or 1, so the classic network aims at 0.01 and 0.99
    targets: list[float] = field(default_factory=lambda: [0.0, 1.0], metadata=rule(ge=0, le=1))
    optimizer: str = field(default="adam", metadata=rule(choices=OPTIMIZERS))
    lr: float = field(default=1e-3, metadata=rule(gt=0))  # step size of every update
    momentum: float = field(default=0.9, metadata=rule(ge=0, lt=1))  # optimizer=momentum only
    l1: float = field(default=0.0, metadata=rule(ge=0))  # penalty l1 * sum|W| on the weights
    l2: float = field(default=0.0, metadata=rule(ge=0))  # penalty l2 / 2 * sum W^2 on the weights
    dropout: float = field(default=0.0, metadata=rule(ge=0, lt=1))  # share of hidden units dropped
    batch_norm: bool = False  # batch normalisation between each hidden dense layer and its activation
    init: str = field(default="he", metadata=rule(choices=INITS))
    batch_size: int = field(default=128, metadata=rule(gt=0))  # examples per update

    def validate(self) -> None:
        """The fused softmax cross-entropy needs a softmax output; targets are a [low, high] pair;
        batch statistics need two or more examples per batch."""
        if self.loss == "cross_entropy" and self.output != "softmax":
            raise NeuroclassError(f"model.options.loss=cross_entropy needs output=softmax. Got output="
                                  f"{self.output!r}; set output=softmax or loss=mse")
        if len(self.targets) != 2 or not self.targets[0] < self.targets[1]:
            raise NeuroclassError(f"The 'model.options.targets' parameter must be [low, high] with low < high. "
                                  f"Got {self.targets!r} instead.")
        if self.batch_norm and self.batch_size < 2:
            raise NeuroclassError(f"model.options.batch_norm needs batch_size >= 2 (the statistics of one "
                                  f"example are no statistics). Got batch_size={self.batch_size}; raise it "
                                  "or set batch_norm=false")


def glassbox_options(values: dict | None = None) -> GlassboxOptions:
    """The options from a mapping: the named ``preset``'s values (default "modern"), then ``values``
    over them. Raises NeuroclassError for an unknown preset, key or value (with a did-you-mean)."""
    values = dict(values or {})
    preset = values.get("preset", "modern")
    build_dataclass(GlassboxOptions, {"preset": preset}, "model.options.")  # checks the name first
    return build_dataclass(GlassboxOptions, {**PRESETS[preset], **values}, "model.options.")
