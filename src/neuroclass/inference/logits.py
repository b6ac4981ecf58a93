"""Batched forward passes of a trained Classifier: the one path every prediction goes through.

A family whose network outputs something other than logits (capsnet: capsule lengths) declares it
in its registry entry, and ``Classifier.output_logits`` turns that output into logits here, so that
softmax, the temperature and the averaging of test-time views treat every family alike. Training
losses (a family's own, e.g. capsnet's margin loss) read the raw outputs (``predict_outputs``).
"""
from __future__ import annotations

import torch
from torch import nn

from neuroclass.device import memory_format
from neuroclass.models import Classifier


@torch.inference_mode()
def predict_outputs(model: nn.Module, x: torch.Tensor, device: torch.device,
                    batch_size: int = 256, channels_last: bool = True) -> torch.Tensor:
    """The network's own outputs (N, K) float32 on the CPU (logits, or capsnet's capsule lengths)
    for inputs ``x``: (N, C, H, W) uint8 images or (N, D) float rows; eval mode, batches of
    ``batch_size`` on ``device``."""
    model.eval()
    fmt = memory_format(device, channels_last, x.ndim)
    out = [model(x[i:i + batch_size].to(device).contiguous(memory_format=fmt)).float().cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, 0)


def predict_logits(model: nn.Module, x: torch.Tensor, device: torch.device,
                   batch_size: int = 256, channels_last: bool = True) -> torch.Tensor:
    """Logits (N, K) float32 on the CPU: ``predict_outputs`` turned into logits by the family's
    declared output kind (``Classifier.output_logits``); softmax of them gives probabilities.

    Example::

        predict_logits(model, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.device("cpu")).shape
        # -> torch.Size([4, 10])
    """
    outputs = predict_outputs(model, x, device, batch_size, channels_last)
    # a bare network (not a Classifier, e.g. in a test) has no declaration: its outputs are logits
    return model.output_logits(outputs) if isinstance(model, Classifier) and len(outputs) else outputs
