"""Inference: batched logits, test-time views, temperature, the InferencePolicy and the Predictor."""
from neuroclass.inference.logits import predict_logits
from neuroclass.inference.policy import InferencePolicy, choose_policy
from neuroclass.inference.predictor import NOT_SURE, Prediction, Predictor, format_predictions

__all__ = ["NOT_SURE", "InferencePolicy", "Prediction", "Predictor", "choose_policy", "format_predictions",
           "predict_logits"]
