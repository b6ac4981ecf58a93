"""Test-time augmentation: average a model's logits over label-preserving views of each image.

Policies: "none" (one pass); "flip" (the image and its left-right mirror); "shift" (the image and
copies moved by a few whole pixels up, down, left and right); "flip+shift" (each shifted view and
its mirror). Mirroring keeps the class of clothes, animals or scenes and breaks that of digits or
text; shifted views are views a model trained with random shifts has seen. So the policy is chosen
on the validation split at the end of training, like the temperature: a view set is kept only
where it raises validation accuracy (by MIN_GAIN unless the model trained with that augmentation)
without raising validation log loss; shifts are judged only for models trained with shifts. The
chosen policy is part of the run's InferencePolicy (inference/policy.py), saved in model.json and
used by every later prediction.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuroclass.inference.logits import predict_logits

POLICIES = ("none", "flip", "shift", "flip+shift")
# forward passes per image under each policy (what a time budget holds back for evaluation)
PASSES = {"none": 1, "flip": 2, "shift": 5, "flip+shift": 10}
# the shifted views, (rows, columns) in units of the shift: the image and its four neighbours
SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))
# Smallest validation accuracy gain (absolute) that keeps a view set the model did not train
# with: one example in a thousand, so that noise on a small validation split does not multiply
# the inference cost for nothing.
MIN_GAIN = 0.001


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Images (N, C, H, W) moved down by ``dy`` and right by ``dx`` whole pixels (negative: up,
    left), the uncovered border 0, as augment.random_shift does in training; any dtype.

    >>> shifted(torch.arange(4).view(1, 1, 2, 2), 0, 1).flatten().tolist()
    [0, 0, 0, 2]
    """
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    if abs(dy) < h and abs(dx) < w:
        out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def views(policy: str, shift: int = 1) -> list[tuple[bool, int, int]]:
    """The (mirrored, rows, columns) views a policy averages.

    >>> views("flip")
    [(False, 0, 0), (True, 0, 0)]
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown test-time augmentation {policy!r}; choose one of {POLICIES}")
    moves = SHIFTS if "shift" in policy else SHIFTS[:1]
    mirrors = (False, True) if "flip" in policy else (False,)
    return [(m, dy * shift, dx * shift) for dy, dx in moves for m in mirrors]


class ViewLogits:
    """The logits of each view of ``x``, each computed once, and their averages per policy."""

    def __init__(self, model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 256,
                 channels_last: bool = True, shift: int = 1) -> None:
        self.model, self.x, self.device = model, x, device
        self.batch_size, self.channels_last, self.shift = batch_size, channels_last, shift
        self.cache: dict[tuple[bool, int, int], torch.Tensor] = {}

    def view(self, mirrored: bool, dy: int, dx: int) -> torch.Tensor:
        key = (mirrored, dy, dx)
        if key not in self.cache:
            x = shifted(self.x, dy, dx) if (dy or dx) else self.x
            self.cache[key] = predict_logits(self.model, x.flip(-1) if mirrored else x, self.device,
                                             self.batch_size, self.channels_last)  # (N, K)
        return self.cache[key]

    def policy(self, name: str) -> torch.Tensor:
        """Logits (N, K) averaged over the policy's views: still logits, so a temperature applies."""
        chosen = views(name, self.shift) if self.x.ndim == 4 else views("none")
        return torch.stack([self.view(*v) for v in chosen]).mean(dim=0)


def tta_logits(model: nn.Module, x: torch.Tensor, device: torch.device, policy: str = "none",
               batch_size: int = 256, channels_last: bool = True, shift: int = 1) -> torch.Tensor:
    """Logits (N, K) under ``policy`` (images only; rows of a table get one pass), views shifted by
    ``shift`` pixels.

    Example::

        tta_logits(model, x_test, torch.device("cpu"), "flip")
    """
    views(policy)  # an unknown policy fails here
    return ViewLogits(model, x, device, batch_size, channels_last, shift).policy(policy)


def judge(model: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor, device: torch.device,
          batch_size: int = 256, channels_last: bool = True, min_gain: float = MIN_GAIN,
          flip_trained: bool = False, shift: int = 0) -> tuple[dict, torch.Tensor | None]:
    """The chosen policy with what it was judged on, and the validation logits (N, K) under it
    (None where there is nothing to judge), so that the temperature is fitted without another pass.

    Candidates, cheapest first: "flip", then, for a model trained with shifts of ``shift`` > 0
    pixels, "shift" and "flip+shift". Each replaces the best so far when it raises validation
    accuracy by its margin (``min_gain``; 0 for a view the model trained with) and does not raise
    log loss."""
    if x_val.ndim != 4 or len(y_val) == 0:
        return {"policy": "none", "reason": "test-time augmentation applies to images with a validation split"}, None
    logits = ViewLogits(model, x_val, device, batch_size, channels_last, max(shift, 1))
    candidates = ["flip"] + (["shift", "flip+shift"] if shift > 0 else [])
    margins = {"flip": 0.0 if flip_trained else min_gain, "shift": 0.0,
               "flip+shift": 0.0 if flip_trained else min_gain}
    scores = {}
    for name in ["none"] + candidates:
        out = logits.policy(name)
        scores[name] = (float((out.argmax(1) == y_val).float().mean()), float(F.cross_entropy(out, y_val)))
    best = "none"
    for name in candidates:
        (acc, loss), (best_acc, best_loss) = scores[name], scores[best]
        if acc >= best_acc + margins[name] and loss <= best_loss:
            best = name
    choice = {"policy": best, "val_accuracy": {k: v[0] for k, v in scores.items()},
              "val_log_loss": {k: v[1] for k, v in scores.items()},
              "min_gain": {k: margins[k] for k in candidates}, "shift": shift,
              "reason": "; ".join(f"{k}: validation accuracy {a:.4f}, log loss {l:.4f}"
                                  for k, (a, l) in scores.items())}
    return choice, logits.policy(best)
