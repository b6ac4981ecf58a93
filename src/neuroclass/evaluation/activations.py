"""Dead ReLU units: channels or features that output zero for every example of a sample.

A unit whose pre-activation is negative for every input passes no gradient, so it never learns
again; many of them waste capacity and usually follow a too-high learning rate.

Only ``nn.ReLU`` and ``nn.ReLU6`` modules are seen (through forward hooks): a network calling
``torch.relu`` / ``F.relu`` in its forward (the residual blocks of the resnet family, for example)
has those activations uncounted. A module called several times in one forward pass (torchvision's
ResNet blocks reuse one ReLU) is counted once per call, as "name", "name#2", ...
"""
from __future__ import annotations

import torch
from torch import nn

from neuroclass.errors import NeuroclassError

RELU_TYPES = (nn.ReLU, nn.ReLU6)
BATCH = 256  # examples per forward pass: evaluation is fastest near 256 on CPU


def dead_relu_fraction(model: nn.Module, x: torch.Tensor, device: torch.device | str = "cpu",
                       max_examples: int = 1024) -> dict:
    """Count dead units of every ReLU module over the first ``max_examples`` rows of ``x``.

    The model runs in eval mode under inference_mode (its train/eval mode is restored after);
    ``x`` is what the model takes (uint8 images for a neuroclass Classifier) and is moved to
    ``device`` batch by batch, where the model must already be. A unit is the channel (dim 1) of
    an (N, C, ...) output or the feature of an (N, D) one; it is dead when it is zero for every
    example. Returns {"layers": [{"name", "units", "dead"}] in call order, "dead", "units",
    "fraction"} (fraction 0.0 when the model has no ReLU module).

    Example::

        dead_relu_fraction(model, test.x[:512])["fraction"]
        # -> 0.03
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or len(x) == 0:
        raise NeuroclassError("dead_relu_fraction: x must be a non-empty tensor of examples (N, ...); "
                              f"got {tuple(x.shape) if hasattr(x, 'shape') else type(x).__name__}")
    if max_examples < 1:
        raise NeuroclassError(f"dead_relu_fraction: max_examples must be >= 1. Got {max_examples} instead.")
    alive: dict[str, torch.Tensor] = {}  # "name#call" -> (units,) bool: positive for some example
    calls: dict[str, int] = {}  # calls of each module in the current forward pass
    hooks = [module.register_forward_hook(_recorder(name, alive, calls))
             for name, module in model.named_modules() if isinstance(module, RELU_TYPES)]
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            for start in range(0, min(len(x), max_examples), BATCH):
                calls.clear()
                model(x[start:min(start + BATCH, max_examples)].to(device))
    finally:  # a failing forward must not leave hooks behind on the caller's model
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    layers = [{"name": name, "units": int(a.numel()), "dead": int((~a).sum())} for name, a in alive.items()]
    units = sum(layer["units"] for layer in layers)
    dead = sum(layer["dead"] for layer in layers)
    return {"layers": layers, "dead": dead, "units": units, "fraction": dead / units if units else 0.0}


def _recorder(name: str, alive: dict[str, torch.Tensor], calls: dict[str, int]):
    """A forward hook that ORs "positive for some example" into ``alive`` for each unit."""
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        calls[name] = calls.get(name, 0) + 1
        key = name if calls[name] == 1 else f"{name}#{calls[name]}"
        if output.ndim < 2:
            return  # no example axis to reduce over: nothing to call a unit
        # reduce right away: an in-place op later in the forward may overwrite ``output``
        fired = (output > 0).transpose(0, 1).reshape(output.shape[1], -1).any(1).cpu()  # (units,)
        alive[key] = alive[key] | fired if key in alive else fired
    return hook
