"""Classical model families (scikit-learn, XGBoost, LightGBM) on feature rows, and HOG/LBP image
features for them. A library layer: it imports only config, registry, rules, errors, io, device and
third-party libraries, and those libraries only when a family is built, fitted or loaded."""
from __future__ import annotations

from neuroclass.classical.budget import StopReason
from neuroclass.classical.families import CLASSICAL, ClassicalFamily, family_options
from neuroclass.classical.features import FeatureOptions, feature_names, feature_options, image_features
from neuroclass.classical.fitting import FittedClassical, fit_classical, predict_proba
from neuroclass.classical.persist import dump_fitted, load_fitted

__all__ = ["CLASSICAL", "ClassicalFamily", "FeatureOptions", "FittedClassical", "StopReason", "dump_fitted",
           "family_options", "feature_names", "feature_options", "fit_classical", "image_features",
           "load_fitted", "predict_proba"]
