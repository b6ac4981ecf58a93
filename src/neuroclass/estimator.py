"""NeuralClassifier: a scikit-learn estimator over the same config, models and Trainer as the CLI.

>>> from sklearn.datasets import load_digits
>>> from sklearn.model_selection import cross_val_score
>>> X, y = load_digits(return_X_y=True)
>>> cross_val_score(NeuralClassifier(model="mlp", epochs=10), X, y, cv=3).mean()  # doctest: +SKIP
0.95...
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from neuroclass.config import load_config
from neuroclass.data.arrays import features_to_float, from_arrays, images_to_uint8
from neuroclass.errors import NeuroclassError
from neuroclass.pipeline import train_in_memory


class NeuralClassifier(ClassifierMixin, BaseEstimator):
    """Images (N, H, W[, C]) or (N, C, H, W), or feature rows (N, D); any label values.

    ``model="auto"`` picks ``cnn`` for images and ``mlp`` for rows. Nothing is learned before fit.
    """

    def __init__(self, model: str = "auto", model_options: dict | None = None,
                 epochs: int | None = None, time_budget: float | str | None = None,
                 batch_size: int | None = None, optimizer: str = "adamw", lr: float = 4e-3,
                 weight_decay: float = 5e-4, schedule: str = "onecycle", label_smoothing: float = 0.1,
                 augment: bool = False, val_fraction: float = 0.1, patience: int = 0,
                 seed: int = 0, device: str = "auto", verbose: bool = False) -> None:
        self.model = model
        self.model_options = model_options
        self.epochs = epochs
        self.time_budget = time_budget
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.val_fraction = val_fraction
        self.patience = patience
        self.seed = seed
        self.device = device
        self.verbose = verbose

    def _config(self, is_image: bool):
        name = self.model if self.model != "auto" else ("cnn" if is_image else "mlp")
        return load_config(values={
            "model": {"name": name, "options": dict(self.model_options or {})},
            "optim": {"name": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay,
                      "schedule": self.schedule},
            "augment": {"enabled": self.augment},
            "data": {"val_fraction": self.val_fraction, "test_fraction": 0.0},
            "train": {"epochs": self.epochs, "time_budget": self.time_budget,
                      "batch_size": self.batch_size, "label_smoothing": self.label_smoothing,
                      "patience": self.patience, "seed": self.seed, "device": self.device,
                      "quiet": not self.verbose}})

    def fit(self, X, y) -> "NeuralClassifier":
        """Train on (X, y) through the same pipeline as ``neuroclass train`` (no run folder); a
        ``val_fraction`` of it is held out for validation, early stopping, and the choice of the
        temperature and test-time views that ``predict_proba`` then applies."""
        X, y = np.asarray(X), np.asarray(y)
        is_image = X.ndim in (3, 4)
        cfg = self._config(is_image)
        dataset = from_arrays(X, y, name="arrays", source="X")
        trained = train_in_memory(cfg, dataset)
        self.classes_ = np.unique(y)
        self.input_shape_ = dataset.input_shape
        self.is_image_ = is_image
        if not is_image:
            self.n_features_in_ = X.shape[1]
        self.predictor_, self.history_ = trained.predictor, trained.history
        self.model_ = trained.predictor.model
        return self

    def _inputs(self, X) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X = np.asarray(X)
        t = torch.from_numpy(images_to_uint8(X, "X") if self.is_image_ else features_to_float(X, "X"))
        if tuple(t.shape[1:]) != tuple(self.input_shape_):
            raise NeuroclassError(f"X: inputs have shape {tuple(t.shape[1:])} but the model was fitted "
                                  f"on {tuple(self.input_shape_)}")
        return t

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (N, K) in the order of ``classes_``: exactly those of ``Predictor`` for
        the same weights (test-time views and temperature included)."""
        x = self._inputs(X)  # checks fitted first
        return self.predictor_.predict_proba_tensor(x)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # checks fitted first
        return self.classes_[proba.argmax(axis=1)]
