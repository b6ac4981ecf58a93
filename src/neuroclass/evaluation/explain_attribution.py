"""Attribution maps: which parts of one input moved a class's logit, computed with Captum.

Methods, all over the numbers the network sees (the standardized input):

- integrated gradients (Sundararajan, Taly and Yan 2017, "Axiomatic Attribution for Deep
  Networks"): the gradient averaged along the straight path from a baseline to the input, times
  (input - baseline); the attributions add up to logit(input) - logit(baseline) (completeness), and
  the gap left is recorded;
- saliency (Simonyan, Vedaldi and Zisserman 2014, "Deep Inside Convolutional Networks"): the
  absolute gradient of the logit at the input, one backward pass;
- Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
  Gradient-based Localization"), for conv networks: a stage's maps weighted by the mean gradient of
  the logit over each map, summed, kept where positive, and scaled up to the input's size.

Captum is imported when a map is computed, so that ``import neuroclass`` does not pay for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import Classifier

METHODS = ("integrated_gradients", "saliency")
IG_STEPS = 32  # points on the path; the completeness gap recorded says whether they were enough
IG_BATCH = 16  # path points per backward pass (memory of large networks)


@dataclass(frozen=True)
class Attribution:
    """One map: ``method`` ("integrated gradients", "saliency" or "Grad-CAM"), for class index
    ``target`` (``role``: "predicted" or "true"); ``values`` float32: the input's shape (C, H, W)
    or (D,) for integrated gradients and saliency, (H, W) for Grad-CAM; ``detail``: how it was
    computed (baseline, steps, layer, the completeness gap)."""

    method: str
    target: int
    role: str
    values: np.ndarray
    detail: str


class SeenLogits(nn.Module):
    """A Classifier from its standardized input (what ``Classifier.standardize`` gives) to logits
    (B, K): the function the maps explain."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, seen: torch.Tensor) -> torch.Tensor:
        return self.model.output_logits(self.model.net(seen))  # (B, K)


def check_method(method: str) -> None:
    """Raise NeuroclassError naming --attribution when ``method`` is not one of METHODS."""
    if method not in METHODS:
        raise NeuroclassError(f"--attribution '{method}': choose one of {', '.join(METHODS)}")


def input_maps(model: Classifier, seen: torch.Tensor, targets: dict[str, int], baseline: torch.Tensor,
               baseline_words: str, method: str = "integrated_gradients") -> list[Attribution]:
    """A map over the input for each (role, class index) of ``targets``, by ``method`` (one of
    METHODS). ``seen``: (1, ...) float32 on the model's device; ``baseline``: the same shape (the
    reference input of integrated gradients, described by ``baseline_words``). Raises
    NeuroclassError for an unknown method.

    Example::

        maps = input_maps(model, seen, {"predicted": 3}, torch.zeros_like(seen), "zeros")
        maps[0].values.shape == seen.shape[1:]
        # -> True
    """
    from captum.attr import IntegratedGradients, Saliency

    check_method(method)
    forward = SeenLogits(model).eval()
    out = []
    for role, target in targets.items():
        x = seen.detach().clone().requires_grad_(True)
        if method == "saliency":
            values = Saliency(forward).attribute(x, target=target, abs=True)
            detail = "absolute gradient of the class's logit at the input (one backward pass)"
            name = "saliency"
        else:
            values, gap = IntegratedGradients(forward).attribute(
                x, baselines=baseline, target=target, n_steps=IG_STEPS, internal_batch_size=IG_BATCH,
                return_convergence_delta=True)
            detail = (f"{IG_STEPS} steps from {baseline_words}; the attributions add up to the logit's "
                      f"change along the path within {abs(float(gap.reshape(-1)[0])):.2g}")
            name = "integrated gradients"
        out.append(Attribution(name, int(target), role, values[0].detach().float().cpu().numpy(), detail))
    return out


def grad_cam_maps(model: Classifier, seen: torch.Tensor, targets: dict[str, int], layer: str) -> list[Attribution]:
    """Grad-CAM of the stage module ``layer`` (a path inside ``model.net``) for each (role, class
    index) of ``targets``, scaled up bilinearly to the input's (H, W); ``seen``: (1, C, H, W)."""
    from captum.attr import LayerAttribution, LayerGradCam

    forward = SeenLogits(model).eval()
    cam = LayerGradCam(forward, model.net.get_submodule(layer))
    out = []
    for role, target in targets.items():
        x = seen.detach().clone().requires_grad_(True)
        small = cam.attribute(x, target=target, relu_attributions=True)  # (1, 1, h, w)
        values = LayerAttribution.interpolate(small, tuple(seen.shape[2:]), "bilinear")  # (1, 1, H, W)
        out.append(Attribution("Grad-CAM", int(target), role, values[0, 0].detach().float().cpu().numpy(),
                               f"maps of {layer} ({small.shape[2]}x{small.shape[3]}), scaled up to the input"))
    return out
