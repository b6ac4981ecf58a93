"""NeuralClassifier: a scikit-learn estimator over the same config, models and Trainer as the CLI.

Example::

    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    X, y = load_digits(return_X_y=True)
    cross_val_score(NeuralClassifier(model="mlp", epochs=10), X, y, cv=3).mean()
    # -> 0.95...
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y, validate_data

from neuroclass.config import Config, load_config
from neuroclass.data.arrays import from_arrays, images_to_uint8
from neuroclass.data.dataset import Dataset
from neuroclass.inference import Predictor
from neuroclass.pipeline import build, finalize, fit, prepare, process_state
from neuroclass.training.callbacks import Callback, Progress


@dataclass
class InMemoryModel:
    """A model trained without a run folder (the estimator's): a Predictor and its record."""

    predictor: Predictor
    history: list = field(default_factory=list)
    cfg: Config | None = None
    policy_record: dict = field(default_factory=dict)


def train_in_memory(cfg: Config, dataset: Dataset, callbacks: list[Callback] | tuple = ()) -> InMemoryModel:
    """The pipeline (neuroclass.pipeline) on ``dataset`` with no test split and no run folder: the
    trained model behind a Predictor with the policy chosen on the validation split
    (``cfg.data.val_fraction``)."""
    cfg = replace(cfg, data=replace(cfg.data, test_fraction=0.0))
    with process_state(cfg):
        prep = prepare(cfg, dataset=dataset, require_test=False)
        model, tuning = build(prep)
        state = fit(prep, model, tuning, callbacks)
        done = finalize(prep, model, state)
    predictor = Predictor(model, done.meta, done.policy, device=prep.device,
                          batch_size=prep.cfg.train.eval_batch_size)
    return InMemoryModel(predictor, state.history, prep.cfg, done.policy_record)


def _is_images(X) -> bool:
    """3-D (N, H, W) or 4-D (N, H, W, C) / (N, C, H, W) inputs are images; anything else is
    checked as feature rows (N, D), which refuses 1-D and 5-D input with scikit-learn's message."""
    ndim = getattr(X, "ndim", None)  # arrays, DataFrames, sparse matrices; lists are converted
    return (np.asarray(X).ndim if ndim is None else ndim) in (3, 4)


class NeuralClassifier(ClassifierMixin, BaseEstimator):
    """Images (N, H, W[, C]) or (N, C, H, W), or feature rows (N, D); any label values.

    ``model="auto"`` picks ``cnn`` for images and ``mlp`` for rows; the other parameters are the
    config fields of the same names (``neuroclass train --set ...``); ``threads``: torch's
    intra-op threads while fitting (None: as set in the process), restored afterwards. Nothing is
    learned before fit. After fit: ``classes_``, ``n_features_in_`` (rows only), ``predictor_``
    (the ``Predictor`` that ``predict_proba`` uses), ``model_``, ``history_`` (per-epoch rows) and
    ``config_`` (the config the pipeline trained with).

    Example::

        NeuralClassifier(model="mlp", epochs=10).fit(X, y).predict(X[:3])
        # -> array(['cat', 'dog', 'cat'], dtype='<U3')
    """

    def __init__(self, model: str = "auto", model_options: dict | None = None,
                 epochs: int | None = None, time_budget: float | str | None = None,
                 batch_size: int | None = None, optimizer: str = "adamw", lr: float = 4e-3,
                 weight_decay: float = 5e-4, schedule: str = "onecycle", label_smoothing: float = 0.1,
                 augment: bool = False, val_fraction: float = 0.1, patience: int = 0,
                 seed: int = 0, device: str = "auto", threads: int | None = None,
                 verbose: bool = False) -> None:
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
        self.threads = threads
        self.verbose = verbose

    def _config(self, is_image: bool) -> Config:
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
                      "threads": self.threads,
                      "quiet": not self.verbose}})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # images (N, H, W); (N, H, W, C) and (N, C, H, W) too
        return tags  # no NaN, no sparse input, one label per example (scikit-learn's defaults)

    def fit(self, X, y) -> "NeuralClassifier":
        """Train on (X, y) through the same pipeline as ``neuroclass train`` (no run folder); a
        ``val_fraction`` of it is held out for validation, early stopping, and the choice of the
        temperature and test-time views that ``predict_proba`` then applies.

        X: feature rows (N, D) of numbers, or images (N, H, W[, C]) / (N, C, H, W) of uint8, 0..255
        or 0..1 floats. y: (N,) labels of any type (strings, ints, integral floats), at least two
        distinct. Raises ValueError (scikit-learn's messages) for mismatched lengths, NaN or
        infinite values, a continuous or 2-D target, a single class, and TypeError for sparse X.
        Leaves torch's and NumPy's global random generators and torch's thread count as they were.
        """
        is_image = _is_images(X)
        if is_image:
            X, y = check_X_y(X, y, allow_nd=True, force_writeable=True, estimator=self)
            for stale in ("n_features_in_", "feature_names_in_"):  # of an earlier fit on rows
                self.__dict__.pop(stale, None)
        else:  # sets n_features_in_ (and feature_names_in_ for a DataFrame), checked at predict
            X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)  # "Unknown label type: continuous" for regression targets
        classes, codes = np.unique(y, return_inverse=True)
        dataset = from_arrays(X, codes, name="arrays", source="X",
                              classes=[str(c) for c in classes], image=is_image)
        # verbose: the progress display the CLI shows, on standard error
        callbacks = [Progress(sys.stderr)] if self.verbose else []
        trained = train_in_memory(self._config(is_image), dataset, callbacks)
        self.classes_ = classes  # column j of predict_proba is the probability of classes_[j]
        self.input_shape_ = dataset.input_shape
        self.is_image_ = is_image
        self.predictor_, self.history_, self.config_ = trained.predictor, trained.history, trained.cfg
        self.model_ = trained.predictor.model
        return self

    def _inputs(self, X) -> torch.Tensor:
        """X checked as at fit: images -> uint8 (N, C, H, W); rows -> float32 (N, D) with the
        fitted number of features (and feature names, for a DataFrame)."""
        check_is_fitted(self)
        if self.is_image_:
            X = check_array(X, allow_nd=True, force_writeable=True, estimator=self)
            return torch.from_numpy(images_to_uint8(X, "X"))
        X = validate_data(self, X, reset=False, dtype=np.float32, force_writeable=True)
        return torch.from_numpy(np.ascontiguousarray(X))

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (N, K) float32 in the order of ``classes_``: exactly those of the
        ``Predictor`` ``predictor_`` for the same weights (test-time views and temperature
        included). Raises NotFittedError before fit and ValueError for inputs unlike fit's."""
        x = self._inputs(X)  # checks fitted first
        return self.predictor_.predict_proba_tensor(x)

    def predict(self, X) -> np.ndarray:
        """Labels (N,): for each row the value in ``classes_`` of the highest probability."""
        proba = self.predict_proba(X)  # checks fitted first
        return self.classes_[proba.argmax(axis=1)]
