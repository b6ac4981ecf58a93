"""neuroclass: from labelled images or a table to a trained, evaluated neural-network classifier.

>>> from neuroclass import NeuralClassifier, train, tune, compare, load_run

The public names load on first use so that `neuroclass --help` does not wait for PyTorch.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["InferencePolicy", "NeuralClassifier", "NeuroclassError", "Predictor", "RunFolder", "RunResult",
           "compare", "explain", "load_config", "load_run", "train", "tune"]

_PUBLIC = {
    "NeuralClassifier": "neuroclass.estimator",
    "NeuroclassError": "neuroclass.errors",
    "InferencePolicy": "neuroclass.inference",
    "Predictor": "neuroclass.inference",
    "RunFolder": "neuroclass.runs",
    "RunResult": "neuroclass.pipeline",
    "compare": "neuroclass.api",
    "explain": "neuroclass.api",
    "load_config": "neuroclass.config",
    "load_run": "neuroclass.api",
    "train": "neuroclass.api",
    "tune": "neuroclass.api",
}


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'neuroclass' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
