"""Inference: batched logits, test-time views, temperature, the InferencePolicy, the Predictor, and
ensembles of runs (EnsemblePredictor; ``load_predictor`` loads either from a folder)."""
from neuroclass.inference.ensemble import EnsemblePredictor, load_predictor
from neuroclass.inference.logits import predict_logits
from neuroclass.inference.policy import InferencePolicy, choose_policy
from neuroclass.inference.predictor import NOT_SURE, Prediction, Predictor, format_predictions

__all__ = ["NOT_SURE", "EnsemblePredictor", "InferencePolicy", "Prediction", "Predictor", "choose_policy",
           "format_predictions", "load_predictor", "predict_logits"]
