"""A classical model as a module of the one inference path: rows (or images) in, logits out.

Prediction, evaluation, reports, ensembles and serving call a trained model as ``model(x)`` in
batches (inference/logits.py). ``ClassicalModel`` gives a fitted classical family that shape: its
``forward`` takes a batch of the run's inputs, (B, D) float feature rows, or (B, C, H, W) uint8
images when the run turns images into HOG/LBP features (``data.features``), and returns the log of
the family's probabilities, (B, K) float32. Softmax of those logits gives the probabilities back;
a fitted temperature T gives p^(1/T) normalised; averaging logits over test-time views averages
log-probabilities (a geometric mean), as for the neural families.

The module holds no parameters: the fitted estimator is saved in its library's own format beside
model.json (runs/model_file.py), never pickled.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from neuroclass.classical.features import FeatureOptions, image_features
from neuroclass.classical.fitting import FittedClassical, predict_proba

# log(0) for a class with no training row: a finite floor keeps softmax and temperature defined
MIN_PROBABILITY = 1e-12


class ClassicalModel(nn.Module):
    """A classical family behind ``forward(x) -> logits`` (B, K).

    ``fitted``: the fitted model (None until ``pipeline.fit`` fits it; calling an unfitted model
    raises RuntimeError). ``features``: "hog", "lbp" or "hog+lbp" when the inputs are images to
    turn into features first (``classical.features.image_features``), else None: feature rows, or
    images whose pixels (in [0, 1]) are the features.

    Example::

        model = ClassicalModel(fit_classical("logreg", {}, x, y, None, None, 3, 0, 1, None))
        model(torch.from_numpy(x[:4])).softmax(1).sum(1)
        # -> tensor([1., 1., 1., 1.])
    """

    def __init__(self, family: str, fitted: Optional[FittedClassical] = None, features: Optional[str] = None,
                 feature_options: Optional[FeatureOptions] = None) -> None:
        super().__init__()
        self.family_name = family
        self.fitted = fitted
        self.features = features
        self.feature_options = feature_options or FeatureOptions()

    def rows(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """What the estimator sees for inputs ``x``: float32 (B, D) feature rows. Rows (B, D) pass
        as they are. Images (B, C, H, W) come as every model takes them, uint8 0-255 or float in
        [0, 1]: with ``features`` set they become their HOG/LBP features, else their pixels in
        [0, 1], C * H * W per row."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if x.ndim != 4:
            return np.ascontiguousarray(x, dtype=np.float32)
        if self.features:
            if x.dtype != np.uint8:
                x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
            return image_features(x, self.features, self.feature_options)
        pixels = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        return np.ascontiguousarray(pixels.reshape(len(x), -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fitted is None:
            raise RuntimeError(f"the {self.family_name} model is not fitted yet")
        proba = predict_proba(self.fitted, self.rows(x))  # (B, K) float64
        logits = np.log(np.maximum(proba, MIN_PROBABILITY)).astype(np.float32)
        return torch.from_numpy(logits).to(x.device if isinstance(x, torch.Tensor) else "cpu")

    def extra_repr(self) -> str:
        return f"family={self.family_name}, features={self.features or 'none'}"
