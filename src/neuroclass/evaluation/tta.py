"""Test-time augmentation: average the logits of each image and its mirror image, where that helps.

Mirroring is label-preserving for clothes, animals or scenes and label-breaking for digits or text,
so the policy is chosen on the validation split at the end of training, like the temperature: flip
is kept only when it raises validation accuracy without raising validation log loss. The chosen
policy is saved in model.json ("tta") and used by every later prediction.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuroclass.training.trainer import predict_logits

POLICIES = ("none", "flip")
# Smallest validation accuracy gain (absolute) that keeps flip: one example in a thousand, so that
# noise on a small validation split does not double the inference cost for nothing.
MIN_GAIN = 0.001


def tta_logits(model: nn.Module, x: torch.Tensor, device: torch.device, policy: str = "none",
               batch_size: int = 256, channels_last: bool = True) -> torch.Tensor:
    """Logits (N, K) under ``policy``: "none" is one pass; "flip" averages the logits of x and of x
    mirrored left-right (images only), which keeps them logits, so a temperature still applies.

    >>> tta_logits(model, x_test, torch.device("cpu"), "flip")  # doctest: +SKIP
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown test-time augmentation {policy!r}; choose one of {POLICIES}")
    logits = predict_logits(model, x, device, batch_size, channels_last)
    if policy == "flip" and x.ndim == 4:
        mirrored = predict_logits(model, x.flip(-1), device, batch_size, channels_last)  # (N, K)
        logits = (logits + mirrored) / 2
    return logits


def judge_flip(model: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor, device: torch.device,
               batch_size: int = 256, channels_last: bool = True,
               min_gain: float = MIN_GAIN) -> tuple[dict, torch.Tensor | None]:
    """``choose_tta``'s choice and the validation logits (N, K) under the chosen policy (None where
    there is nothing to judge), so that the temperature is fitted without another pass."""
    if x_val.ndim != 4 or len(y_val) == 0:
        return {"policy": "none", "reason": "test-time flip applies to images with a validation split"}, None
    plain = predict_logits(model, x_val, device, batch_size, channels_last)
    mirrored = predict_logits(model, x_val.flip(-1), device, batch_size, channels_last)
    flip = (plain + mirrored) / 2
    acc_plain = float((plain.argmax(1) == y_val).float().mean())
    acc_flip = float((flip.argmax(1) == y_val).float().mean())
    loss_plain = float(F.cross_entropy(plain, y_val))
    loss_flip = float(F.cross_entropy(flip, y_val))
    keep = acc_flip >= acc_plain + min_gain and loss_flip <= loss_plain
    choice = {"policy": "flip" if keep else "none",
              "val_accuracy_plain": acc_plain, "val_accuracy_flip": acc_flip,
              "val_log_loss_plain": loss_plain, "val_log_loss_flip": loss_flip, "min_gain": min_gain,
              "reason": (f"validation accuracy {acc_plain:.4f} plain, {acc_flip:.4f} with flip; "
                         f"log loss {loss_plain:.4f} plain, {loss_flip:.4f} with flip")}
    return choice, flip if keep else plain


def choose_tta(model: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor, device: torch.device,
               batch_size: int = 256, channels_last: bool = True, min_gain: float = MIN_GAIN) -> dict:
    """The policy for this model and data, judged on the validation split: "flip" when it raises
    accuracy by at least ``min_gain`` and does not raise log loss, else "none" (always "none" for
    tables).

    >>> choose_tta(model, splits.val.x, splits.val.y, torch.device("cpu"))["policy"]  # doctest: +SKIP
    'flip'
    """
    return judge_flip(model, x_val, y_val, device, batch_size, channels_last, min_gain)[0]


def inference_policy(model: nn.Module, x_val: torch.Tensor | None, y_val: torch.Tensor | None,
                     device: torch.device, tta: str = "auto", batch_size: int = 256,
                     channels_last: bool = True, flip_trained: bool = False) -> dict:
    """How the trained model will predict, judged on the validation split: the test-time
    augmentation ("auto" chooses with ``choose_tta``) and then the guarded temperature fitted on the
    logits of that policy. Returns {"tta", "temperature", "tta_choice"}.

    ``flip_trained``: the model learnt from mirrored images, so the mirror is a view it knows and
    "auto" keeps the flip without the MIN_GAIN margin (still not where it lowers validation
    accuracy or raises log loss).

    >>> inference_policy(model, splits.val.x, splits.val.y, torch.device("cpu"))  # doctest: +SKIP
    {'tta': 'flip', 'temperature': 1.12, 'tta_choice': {...}}
    """
    from neuroclass.evaluation.calibrate import calibrate

    if x_val is None or y_val is None or len(y_val) == 0:
        policy = tta if tta in POLICIES else "none"
        return {"tta": policy, "temperature": 1.0, "tta_choice": {"policy": policy,
                                                                 "reason": "no validation split"}}
    logits = None
    if tta == "auto":
        choice, logits = judge_flip(model, x_val, y_val, device, batch_size, channels_last,
                                    0.0 if flip_trained else MIN_GAIN)
    else:
        choice = {"policy": tta, "reason": "set by train.tta"}
    if logits is None:
        logits = tta_logits(model, x_val, device, choice["policy"], batch_size, channels_last)
    return {"tta": choice["policy"], "temperature": float(calibrate(logits, y_val)["temperature"]),
            "tta_choice": choice}
