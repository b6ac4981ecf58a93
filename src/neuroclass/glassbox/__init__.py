"""A neural network for learning how one works: NumPy only, every layer's forward and backward pass
side by side, and still a fast, accurate classifier.

784 pixel inputs (or any width), dense layers with a weight per input and a bias per neuron, the
weighted sum z = x W + b, an activation (sigmoid, ReLU, tanh), softmax outputs, the loss between
target and output, backpropagation and a gradient-descent update scaled by the learning rate. Two
presets, ``classic`` (the explainers' from-scratch digit network) and ``modern`` (ReLU, softmax
cross-entropy, Adam, mini-batches), are values of the same options.

>>> from sklearn.datasets import load_digits
>>> x, y = load_digits(return_X_y=True)
>>> net = Network(glassbox_options({"preset": "modern"}), n_inputs=64, n_classes=10, seed=0)
>>> history = fit(net, (x / 16).astype("float32"), y, epochs=2, threads=1)
>>> len(history.epochs)
2
"""
from __future__ import annotations

from neuroclass.glassbox.fit import EpochRecord, FitStop, History, fit
from neuroclass.glassbox.network import Network
from neuroclass.glassbox.options import PRESETS, GlassboxOptions, glassbox_options
from neuroclass.glassbox.trace import GradientTrace, LayerTrace

__all__ = ["EpochRecord", "FitStop", "GlassboxOptions", "GradientTrace", "History", "LayerTrace", "Network",
           "PRESETS", "fit", "glassbox_options"]
