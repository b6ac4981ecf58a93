"""InferencePolicy: how a trained model turns its logits into the probabilities every command reports.

Two choices made on the validation split at the end of training (Guo et al. 2017 for the
temperature; test-time views in inference/views.py) and then frozen: saved in model.json under
"inference" and applied by the Predictor, the estimator, evaluation, the report and serving alike.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from neuroclass.errors import NeuroclassError
from neuroclass.inference.calibrate import calibrate
from neuroclass.inference.views import POLICIES, judge, tta_logits


@dataclass(frozen=True)
class InferencePolicy:
    """``tta``: the test-time views averaged ("none", "flip", "shift", "flip+shift");
    ``tta_shift``: pixels each shifted view moves (>= 1); ``temperature``: T > 0 dividing the
    averaged logits before softmax (1.0: uncalibrated).

    >>> InferencePolicy("flip", 1, 1.5).as_dict()
    {'tta': 'flip', 'tta_shift': 1, 'temperature': 1.5}
    >>> InferencePolicy(temperature=0.0)
    Traceback (most recent call last):
    ...
    neuroclass.errors.NeuroclassError: inference policy: temperature must be a number > 0. Got 0.0 instead.
    """

    tta: str = "none"
    tta_shift: int = 1
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.tta not in POLICIES:
            raise NeuroclassError(f"inference policy: tta must be one of {', '.join(POLICIES)}. "
                                  f"Got {self.tta!r} instead.")
        if isinstance(self.tta_shift, bool) or not isinstance(self.tta_shift, int) or self.tta_shift < 1:
            raise NeuroclassError(f"inference policy: tta_shift must be a whole number of pixels >= 1. "
                                  f"Got {self.tta_shift!r} instead.")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise NeuroclassError(f"inference policy: temperature must be a number > 0. Got {t!r} instead.")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, where: str = "model.json") -> "InferencePolicy":
        """The policy saved in ``where``; unknown keys or bad values raise NeuroclassError."""
        unknown = sorted(set(values) - {"tta", "tta_shift", "temperature"})
        if unknown:
            raise NeuroclassError(f"{where}: unknown inference policy keys {unknown}")
        try:
            return cls(**values)
        except NeuroclassError as exc:
            raise NeuroclassError(f"{where}: {exc}") from None

    def logits(self, model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 256,
               channels_last: bool = True) -> torch.Tensor:
        """Logits (N, K) float32 on the CPU, averaged over the policy's views, before the temperature."""
        return tta_logits(model, x, device, self.tta, batch_size, channels_last, self.tta_shift)

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """softmax(logits / temperature) as float32 (N, K); rows sum to 1."""
        return torch.softmax(logits.float() / self.temperature, dim=1).numpy()


def choose_policy(model: nn.Module, x_val: torch.Tensor | None, y_val: torch.Tensor | None,
                  device: torch.device, tta: str = "auto", batch_size: int = 256,
                  channels_last: bool = True, flip_trained: bool = False,
                  shift: int = 0) -> tuple[InferencePolicy, dict, torch.Tensor | None]:
    """The policy for a trained model, judged on the validation split: the test-time views
    ("auto" chooses with ``views.judge``), then the guarded temperature fitted on the logits of
    those views. Returns (policy, record of both decisions, validation logits under the policy
    (None without a validation split)).

    ``flip_trained``: the model learnt from mirrored images, so "auto" keeps the mirror without the
    MIN_GAIN margin. ``shift``: pixels of the random shifts it learnt from (0: none); "auto" then
    judges shifted views too; a policy set by the user shifts by max(shift, 1).

    Example::

        policy, record, _ = choose_policy(model, splits.val.x, splits.val.y, torch.device("cpu"))
    """
    pixels = max(shift, 1)
    if x_val is None or y_val is None or len(y_val) == 0:
        name = tta if tta in POLICIES else "none"
        return InferencePolicy(name, pixels), {"tta": {"policy": name, "reason": "no validation split"}}, None
    if tta == "auto":
        choice, logits = judge(model, x_val, y_val, device, batch_size, channels_last,
                               flip_trained=flip_trained, shift=shift)
    else:
        choice, logits = {"policy": tta, "reason": "set by train.tta"}, None
    if logits is None:
        logits = tta_logits(model, x_val, device, choice["policy"], batch_size, channels_last, pixels)
    calibration = calibrate(logits, y_val)
    policy = InferencePolicy(choice["policy"], pixels, float(calibration["temperature"]))
    return policy, {"tta": choice, "temperature": calibration}, logits
