"""The glass-box network (neuroclass.glassbox, NumPy) as a module of the one inference path.

Prediction, evaluation, reports, ensembles and serving call a trained model as ``model(x)`` in
batches. ``GlassboxModule`` gives the NumPy network that shape: ``forward`` takes a batch of the
run's inputs, (B, C, H, W) images (uint8 0-255, or floats in [0, 1]) or (B, D) table rows, and
returns the log of the network's class probabilities, (B, K) float32, which softmax turns back
into the probabilities: ``Network.log_proba``, computed from the logits, finite and distinct for
classes whose probabilities underflow float32 (a calibration temperature below 1 multiplies them).

The module's parameters and buffers are views of the network's own arrays (``torch.from_numpy``
shares their memory), under the network's stable names (dense0.weight (D_in, D_out), dense0.bias,
bn0.running_mean, ...): training in NumPy updates them in place, ``state_dict()`` is what a run
saves in model.safetensors, and ``load_state_dict`` writes a saved run's weights into the network.
Nothing here computes with torch; the network stays the one that was trained.

>>> from neuroclass.glassbox import Network, glassbox_options
>>> module = GlassboxModule(Network(glassbox_options({"hidden": [8]}), n_inputs=16, n_classes=3))
>>> sorted(module.state_dict())
['dense0.bias', 'dense0.weight', 'dense1.bias', 'dense1.weight']
>>> module(torch.zeros(2, 1, 4, 4, dtype=torch.uint8)).exp().sum(dim=1).round(decimals=4)
tensor([1., 1.])
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import Network, glassbox_options
from neuroclass.glassbox.layers import Dense

GLASSBOX = "glassbox"  # the family's model.name


def input_rows(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """What the network sees for inputs ``x``: float32 (B, D) rows. Images (B, C, H, W) become
    their pixels in [0, 1] (uint8 divided by 255; floats as they are), C * H * W per row; table rows
    (B, D) pass as they are."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if x.ndim != 4:
        return np.ascontiguousarray(x, dtype=np.float32)
    pixels = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return np.ascontiguousarray(pixels.reshape(len(x), -1))


class GlassboxModule(nn.Module):
    """The glass-box ``network`` behind ``forward(x) -> log-probabilities`` (B, K).

    Example::

        module = GlassboxModule(Network(glassbox_options({"preset": "classic"}), 784, 10))
        module(torch.zeros(4, 1, 28, 28, dtype=torch.uint8)).shape
        # -> torch.Size([4, 10])
    """

    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network = network
        learned = {p.name for p in network.params}
        for name, array in network.named_arrays().items():
            layer, field = name.split(".")
            if layer not in self._modules:
                self.add_module(layer, nn.Module())
            tensor = torch.from_numpy(array)  # shares the array's memory: no copy, always current
            if name in learned:
                self._modules[layer].register_parameter(field, nn.Parameter(tensor, requires_grad=False))
            else:
                self._modules[layer].register_buffer(field, tensor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_p = self.network.log_proba(input_rows(x))  # (B, K), finite: from the logits (log-sum-exp)
        return torch.from_numpy(log_p).to(x.device if isinstance(x, torch.Tensor) else "cpu")

    def flops_per_example(self) -> int:
        """Forward FLOPs for one example, a multiply-add counting 2 (as torch's FlopCounterMode
        counts matrix products): 2 * D_in * D_out for each dense layer. The forward pass runs in
        NumPy, where torch's counter sees nothing."""
        return sum(2 * int(layer.weight.size) for layer in self.network.layers if isinstance(layer, Dense))

    def extra_repr(self) -> str:
        o = self.network.options
        return (f"inputs={self.network.n_inputs}, hidden={o.hidden}, classes={self.network.n_classes}, "
                f"activation={o.activation}, output={o.output}, loss={o.loss}")


def load_glassbox(meta: dict, state: dict[str, torch.Tensor], where: str) -> GlassboxModule:
    """The trained module of a run from its model.json (``meta``: the options, input shape and
    classes) and its weights (``state``, from model.safetensors). Raises NeuroclassError naming
    ``where`` when the weights do not fit the options."""
    network = Network(glassbox_options(meta["options"]), n_inputs=math.prod(meta["input_shape"]),
                      n_classes=len(meta["classes"]))
    module = GlassboxModule(network)
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise NeuroclassError(f"{where}: weights do not match model.json (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}); keep the two files of one run together")
    return module.eval()
