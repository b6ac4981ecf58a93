"""The glass-box network: dense layers, activations and a loss, trained by backpropagation, in
NumPy that a learner can read from top to bottom.

A network is built from ``GlassboxOptions``: for each hidden width a dense layer, then batch
normalisation (``batch_norm``), the activation and dropout (``dropout``); then a dense output layer
of one neuron per class and the output activation (softmax or sigmoid). All arrays are float32.

>>> from neuroclass.glassbox.options import glassbox_options
>>> net = Network(glassbox_options({"hidden": [16]}), n_inputs=64, n_classes=10, seed=0)
>>> [layer.name for layer in net.layers]
['dense0', 'relu0', 'dense1']
>>> net.predict_proba(np.zeros((3, 64), np.float32)).shape
(3, 10)
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import numpy as np
import safetensors
import safetensors.numpy

from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import inputs
from neuroclass.glassbox.init import initial_weights
from neuroclass.glassbox.layers import ACTIVATION_LAYERS, BatchNorm, Dense, Dropout
from neuroclass.glassbox.losses import SoftmaxCrossEntropy, SquaredError
from neuroclass.glassbox.optimizers import make_optimizer
from neuroclass.glassbox.options import GlassboxOptions, glassbox_options
from neuroclass.glassbox.parameters import FlatParams, gather
from neuroclass.glassbox.trace import GradientTrace, LayerTrace, gradients, trace
from neuroclass.io import write_bytes_atomic

WEIGHTS_FORMAT = "neuroclass.glassbox/1"  # the safetensors metadata's "format": what wrote the file
RUN_RECORD = "model.json"  # beside a run folder's model.safetensors: the options its file does not hold
EVAL_ROWS = 1024  # rows per forward pass when predicting: bounds the memory of large inputs


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax(z) along each row of z (B, K), float32: z - m - log sum_j e^(z_j - m), with m each
    row's largest z, so that no exp overflows and the largest term is e^0 = 1 (log-sum-exp).

    >>> log_softmax(np.array([[0.0, -1000.0, -2000.0]], np.float32))
    array([[    0., -1000., -2000.]], dtype=float32)
    """
    shifted = z - z.max(axis=1, keepdims=True)  # (B, K), each row's largest 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def build_layers(options: GlassboxOptions, n_inputs: int, n_classes: int, init_rng: np.random.Generator,
                 dropout_rng: np.random.Generator) -> list:
    """The layers in order, input side first, named dense0, bn0, relu0, dropout0, dense1, ..."""
    widths = [n_inputs, *options.hidden]
    layers: list = []
    for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Dense(f"dense{i}", initial_weights(options.init, d_in, d_out, init_rng), input_grad=i > 0))
        if options.batch_norm:
            layers.append(BatchNorm(f"bn{i}", d_out))
        layers.append(ACTIVATION_LAYERS[options.activation](f"{options.activation}{i}"))
        if options.dropout:
            layers.append(Dropout(f"dropout{i}", options.dropout, dropout_rng))
    last = len(options.hidden)
    weight = initial_weights(options.init, widths[-1], n_classes, init_rng)
    layers.append(Dense(f"dense{last}", weight, input_grad=last > 0))
    return layers


class Network:
    """A fully connected classifier of ``n_inputs`` values per example into ``n_classes`` classes.

    ``seed`` seeds the starting weights and the dropout masks (two independent streams), so that
    the same options, seed and training give bit-identical weights. ``params``: every learned
    array with its gradient (``layers.Param``), in layer order, all views of one buffer
    (``parameters.FlatParams``). Raises NeuroclassError for fewer than 1 input or 2 classes.
    """

    def __init__(self, options: GlassboxOptions, n_inputs: int, n_classes: int, seed: int = 0) -> None:
        if n_inputs < 1 or n_classes < 2:
            raise NeuroclassError(f"glassbox network: needs at least 1 input and 2 classes; got n_inputs="
                                  f"{n_inputs}, n_classes={n_classes}; check the data's shape and labels")
        self.options, self.n_inputs, self.n_classes, self.seed = options, n_inputs, n_classes, seed
        init_seed, dropout_seed = np.random.SeedSequence(seed).spawn(2)
        self.layers = build_layers(options, n_inputs, n_classes, np.random.default_rng(init_seed),
                                   np.random.default_rng(dropout_seed))
        self.output = ACTIVATION_LAYERS[options.output](options.output)
        self.loss = (SoftmaxCrossEntropy() if options.loss == "cross_entropy"
                     else SquaredError(*options.targets))
        self.optimizer = make_optimizer(options.optimizer, options.lr, options.momentum, options.l1, options.l2)
        self.params: FlatParams = gather(self.layers)

    def __setstate__(self, state: dict) -> None:
        # a copy (copy.deepcopy, pickle) gets each layer's arrays as separate copies, no longer
        # views of one buffer: gather them into a buffer of the copy's own
        self.__dict__.update(state)
        self.params = gather(self.layers)

    @property
    def has_batch_norm(self) -> bool:
        return any(isinstance(layer, BatchNorm) for layer in self.layers)

    # ------------------------------------------------------------------------- forward, backward

    def logits(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """(B, D) float32 rows -> (B, K) weighted sums z of the output layer (no checks: fast path)."""
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def loss_gradient(self, x: np.ndarray, y: np.ndarray, train: bool) -> tuple[float, np.ndarray]:
        """Forward pass and loss on a batch: (loss, dL/dz (B, K) of the output layer's weighted sums)."""
        return self.loss_delta(self.logits(x, train), y, train)

    def loss_delta(self, z: np.ndarray, y: np.ndarray, train: bool) -> tuple[float, np.ndarray]:
        """The loss of the output layer's weighted sums ``z`` (B, K) and its gradient dL/dz (B, K).

        With softmax cross-entropy that is (p - onehot(y)) / B directly; with squared error the
        gradient goes back through the output activation first.
        """
        if self.loss.takes_logits:
            value = self.loss.forward(z, y)
            return value, self.loss.backward()
        value = self.loss.forward(self.output.forward(z, train), y)
        return value, self.output.backward(self.loss.backward())

    def backward(self, grad_z: np.ndarray) -> None:
        """Backpropagation: each layer, last to first, turns dL/d(its output) into dL/d(its input)
        and fills its parameters' gradients."""
        grad = grad_z
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One update on a batch, x (B, D) float32 and y (B,) int64, checked by the caller: forward,
        loss, backward, optimiser step. Returns the batch's loss and how many of its examples the
        network classified right, both before the update."""
        z = self.logits(x, train=True)  # (B, K)
        value, grad_z = self.loss_delta(z, y, train=True)
        correct = np.count_nonzero(z.argmax(axis=1) == y)  # the highest z: the highest softmax or sigmoid output
        self.backward(grad_z)
        self.optimizer.step(self.params)
        return value, correct

    # ------------------------------------------------------------------------- prediction

    def log_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, D) rows -> (N, K) float32 logs of the class probabilities, from the output layer's
        weighted sums z without forming the probabilities, so that a class far below the top keeps
        a finite log where its probability underflows float32 to 0 (below about 1e-45).

        Softmax: log p_k = z_k - log sum_j e^z_j (``log_softmax``). Sigmoid outputs
        s_k = 1 / (1 + e^-z_k), divided by their sum: log s_k = -log(1 + e^-z_k) (softplus of -z,
        ``np.logaddexp``), and log p_k = log s_k - log sum_j s_j, which is ``log_softmax`` of the
        log s. Raises NeuroclassError for bad rows (``inputs.rows``).
        """
        x = inputs.rows(x, self.n_inputs, "x")
        out = np.empty((len(x), self.n_classes), np.float32)
        for start in range(0, len(x), EVAL_ROWS):
            z = self.logits(x[start:start + EVAL_ROWS])  # (B, K)
            if self.options.output == "sigmoid":
                z = -np.logaddexp(np.float32(0), -z)  # (B, K): log s
            out[start:start + EVAL_ROWS] = log_softmax(z)
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, D) rows -> (N, K) float32 class probabilities, each row summing to 1: the exp of
        ``log_proba``. Sigmoid outputs, which need not sum to 1, are divided by their sum. Raises
        NeuroclassError for bad rows (``inputs.rows``)."""
        return np.exp(self.log_proba(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, D) rows -> (N,) int64 class numbers of the highest output."""
        return self.predict_proba(x).argmax(axis=1).astype(np.int64)

    def evaluate(self, x: np.ndarray, y: np.ndarray, predicted: Optional[np.ndarray] = None) -> tuple[float, float]:
        """(mean loss, accuracy) on rows ``x`` (N, D) and labels ``y`` (N,), in evaluation mode (no
        dropout; batch normalisation's running statistics). ``predicted``: an (N,) int64 array
        that receives each row's predicted class (the highest output), as NumPy's ``out=``
        arguments do. Raises NeuroclassError for bad input."""
        x = inputs.rows(x, self.n_inputs, "x")
        y = inputs.labels(y, len(x), self.n_classes, "y")
        loss_sum, correct = 0.0, 0
        for start in range(0, len(x), EVAL_ROWS):
            xb, yb = x[start:start + EVAL_ROWS], y[start:start + EVAL_ROWS]
            z = self.logits(xb)
            a = self.output.forward(z, False)
            loss_sum += len(xb) * self.loss.forward(z if self.loss.takes_logits else a, yb)
            classes = a.argmax(axis=1)  # (B,)
            correct += int((classes == yb).sum())
            if predicted is not None:
                predicted[start:start + EVAL_ROWS] = classes
        return loss_sum / max(len(x), 1), correct / max(len(x), 1)

    # ------------------------------------------------------------------------- one example, every number

    def trace(self, x: np.ndarray) -> list[LayerTrace]:
        """Each dense layer's inputs, weighted sums, biases and activations for one example ``x``
        (D,), in evaluation mode (``trace.trace``)."""
        return trace(self, x)

    def gradients(self, x: np.ndarray, y: int) -> GradientTrace:
        """The loss, output probabilities, output error signal, gradients and the change one
        optimiser step would make, for one example ``x`` (D,) of class ``y``; nothing in the network
        changes (``trace.gradients``)."""
        return gradients(self, x, y)

    # ------------------------------------------------------------------------- weights

    def named_arrays(self) -> dict[str, np.ndarray]:
        """The network's own arrays, not copies, by stable name: every learned array (``params``)
        and batch normalisation's running statistics, float32: dense0.weight (D_in, D_out),
        dense0.bias, bn0.weight, bn0.bias, bn0.running_mean, bn0.running_var, dense1.weight, ...
        Training changes them in place, so a view of them (a tensor sharing their memory) stays
        current."""
        arrays = {}
        for layer in self.layers:
            arrays.update({p.name: p.value for p in layer.params()})
            if isinstance(layer, BatchNorm):
                arrays.update(layer.buffers())
        return arrays

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of ``named_arrays``: the weights to save, by stable name."""
        return {name: array.copy() for name, array in self.named_arrays().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy ``state`` (as ``state_dict`` gives it) into the network's arrays, in place. Raises
        NeuroclassError when a name is missing or extra, or a shape differs."""
        targets = self.named_arrays()
        missing, extra = sorted(set(targets) - set(state)), sorted(set(state) - set(targets))
        if missing or extra:
            raise NeuroclassError(f"glassbox weights: missing {missing or 'none'}, unexpected {extra or 'none'}; "
                                  "load weights saved from a network of the same options")
        for name, target in targets.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise NeuroclassError(f"glassbox weights: {name} has shape {value.shape}, the network "
                                      f"{target.shape}; load weights saved from a network of the same shape")
            np.copyto(target, value, casting="same_kind")

    def save(self, path: str | Path) -> Path:
        """Write the weights (``state_dict``) to ``path`` as safetensors, with the options and sizes
        that rebuild the network as the file's metadata; through a temporary file and a rename, so
        that a reader never sees half a file. Raises OSError when the folder cannot be written."""
        meta = {"format": WEIGHTS_FORMAT, "n_inputs": self.n_inputs, "n_classes": self.n_classes,
                "seed": self.seed, "options": dataclasses.asdict(self.options)}
        # one metadata key: safetensors keeps metadata in a hash map whose order varies between processes
        data = safetensors.numpy.save(self.state_dict(), metadata={"glassbox": json.dumps(meta, sort_keys=True)})
        return write_bytes_atomic(path, data)

    @classmethod
    def load(cls, path: str | Path) -> "Network":
        """The network saved at ``path`` by ``save``, ready to predict (the optimiser starts afresh).
        Raises NeuroclassError for a missing file or one that ``save`` did not write; for a run
        folder or its model.safetensors, one that names ``neuroclass.load_run``, which reads them."""
        path = Path(path)
        run = path if path.is_dir() else path.parent
        if (run / RUN_RECORD).is_file():  # a run folder, or its model.safetensors: no options inside
            raise NeuroclassError(f"glassbox weights: '{path}' is a run folder's, whose options are in its "
                                  f"{RUN_RECORD}; load the run's network with neuroclass.load_run('{run}').model"
                                  ".network, or pass a file that Network.save() wrote")
        if not path.is_file():
            raise NeuroclassError(f"glassbox weights: '{path}' does not exist; pass the file that save() wrote")
        try:
            with safetensors.safe_open(str(path), framework="np") as fh:
                meta = json.loads((fh.metadata() or {})["glassbox"])
                state = {name: fh.get_tensor(name) for name in fh.keys()}
        except (KeyError, ValueError, OSError, safetensors.SafetensorError) as exc:
            reason = "no glass-box metadata in it" if isinstance(exc, KeyError) else str(exc)
            raise NeuroclassError(f"glassbox weights: '{path}' is not a glass-box network file ({reason}); "
                                  "pass the file that Network.save() wrote") from None
        if meta.get("format") != WEIGHTS_FORMAT:
            raise NeuroclassError(f"glassbox weights: '{path}' has format {meta.get('format')!r}, not "
                                  f"{WEIGHTS_FORMAT!r}; pass the file that Network.save() wrote")
        network = cls(glassbox_options(meta["options"]), meta["n_inputs"], meta["n_classes"], meta["seed"])
        network.load_state_dict(state)
        return network
