"""One forward pass of a trained network, recorded through forward hooks, and what explain reads
from it: the dense layers as arrays (for the NumPy steps of explain_steps.py), the declared head and
its input, the first layer's weights, and a feature map per stage.

Where things are comes from the family's declarations (models/registry.py): the head is the module
(or parameter) ``family.head_path`` names, and the feature extractor is everything the network
runs before its declared feature layer (``family.feature_path`` and ``feature_side``). A *stage*
is a stretch of the feature extractor at one spatial resolution; its map is the output of the last
module that finishes at that resolution (a module called once per pass, so that its output is one
tensor).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from neuroclass.evaluation.explain_steps import DenseLayer, dense_step
from neuroclass.models.layers import ACTIVATIONS, Classifier
from neuroclass.models.registry import Side

PASS_THROUGH = (nn.Dropout, nn.Flatten, nn.Identity)  # identities at inference
WEIGHTED = (nn.Linear, nn.Conv2d)  # what counts as a network's first layer of weights
ACTIVATION_NAMES = {cls: name for name, cls in ACTIVATIONS.items()}


@dataclass
class Call:
    """One module's call in the pass: its path in the network, the module, and (batch of one,
    detached copies on the CPU) its first input where it is a dense layer or the head, its output where that
    is a tensor of rows (1, D) or maps (1, C, H, W)."""

    name: str
    module: nn.Module
    input: torch.Tensor | None
    output: torch.Tensor | None


@dataclass
class Trace:
    """The calls of one pass in the order the modules finished; ``boundary``: how many of them
    ran before the declared feature layer; ``counts``: calls per module path; ``head``: the head's
    path; ``logits``: the network's outputs as logits (1, K)."""

    calls: list[Call]
    boundary: int
    counts: dict[str, int]
    head: str
    logits: torch.Tensor
    first: Call | None = field(default=None)  # the first dense or conv layer called

    def call_of(self, name: str) -> Call | None:
        return next((c for c in self.calls if c.name == name), None)


def trace_network(model: Classifier, seen: torch.Tensor) -> Trace:
    """Run ``model``'s network on ``seen`` (1, ...) float32, the standardized input (what
    ``model.standardize`` gives), in eval mode without gradients, recording every module's call.

    Example::

        trace = trace_network(model, model.standardize(x[None]))
        [c.name for c in trace.calls][:3]
        # -> ['layers.0', 'layers.1', 'layers.2']
    """
    net, family = model.net, model.family
    calls: list[Call] = []
    counts: dict[str, int] = {}
    head = family.head_path(net)
    keep_input = {name for name, m in net.named_modules() if isinstance(m, nn.Linear) or name == head}

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            counts[name] = counts.get(name, 0) + 1
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            # copies on the CPU: a later in-place op may change ``output``, and NumPy reads them
            kept_in = first.detach().to("cpu", copy=True) if first is not None and name in keep_input else None
            kept_out = (output.detach().to("cpu", copy=True)
                        if isinstance(output, torch.Tensor) and output.ndim in (2, 4) else None)
            calls.append(Call(name, module, kept_in, kept_out))
        return hook

    boundary: list[int] = []
    hooks = [m.register_forward_hook(record(n)) for n, m in net.named_modules() if n]
    feature = net.get_submodule(family.feature_path(net))
    if family.feature_side is Side.INPUT:
        hooks.append(feature.register_forward_pre_hook(lambda m, args: boundary.append(len(calls))))
    else:  # registered after ``record``: runs once the feature module's own call is in ``calls``
        hooks.append(feature.register_forward_hook(lambda m, args, out: boundary.append(len(calls))))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            logits = model.output_logits(net(seen))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    first = next((c for c in calls if isinstance(c.module, WEIGHTED)), None)
    return Trace(calls, boundary[0] if boundary else len(calls), counts, head, logits.float().cpu(), first)


# ----------------------------------------------------------------------------- dense layers

def dense_layers(model: Classifier, trace: Trace, top: int = 5, terms: int = 8) -> list[DenseLayer]:
    """The network's dense layers in call order when its first layer of weights is dense (an mlp);
    else the dense layers that end the network: its head, when the head is a dense layer giving
    the logits (``gives_logits``), after the dense layers just before it whose activations, as
    computed here, are what the next one received (a cnn's hidden layer in its head); [] otherwise
    (a head that is a parameter or a convolution). Each layer's input is what the pass gave it,
    flattened."""
    linear = [i for i, c in enumerate(trace.calls)
              if isinstance(c.module, nn.Linear) and c.input is not None and c.input.ndim == 2]  # rows (1, D)
    if trace.first is not None and isinstance(trace.first.module, nn.Linear):
        return [_dense_layer(trace, trace.calls[i], trace.calls[i + 1:j] if j else [], trace.calls[j] if j else None,
                             top, terms) for i, j in zip(linear, linear[1:] + [None])]
    head = [i for i in linear if trace.calls[i].name == trace.head]
    if not head or not gives_logits(trace):
        return []
    chain = [head[-1]]
    out = [_dense_layer(trace, trace.calls[chain[0]], [], None, top, terms)]
    for i in reversed([i for i in linear if i < chain[0]]):
        layer = _dense_layer(trace, trace.calls[i], trace.calls[i + 1:chain[0]], trace.calls[chain[0]], top, terms)
        if not layer.matches:
            break
        chain.insert(0, i)
        out.insert(0, layer)
    return out


def _dense_layer(trace: Trace, call: Call, following: list[Call], after: Call | None, top: int,
                 terms: int) -> DenseLayer:
    """The step of the dense layer of ``call``, with the ``following`` calls up to the next dense
    layer's call ``after`` (None: it is the last one, its z the logits)."""
    leaves = [c for c in following if not any(True for _ in c.module.children())]
    scale, shift, activation = _between(leaves) if after is not None else (None, None, "identity")
    x = call.input[0].flatten().double().numpy()
    step = dense_step(call.module.weight.detach().double().cpu().numpy(),
                      None if call.module.bias is None else call.module.bias.detach().double().cpu().numpy(),
                      x, activation or "identity", scale, shift, name=call.name, top=top, terms=terms)
    matches = None
    if after is not None:
        received = after.input[0].flatten().double().numpy()
        matches = activation is not None and received.shape == step.a.shape and \
            bool(np.allclose(step.a, received, rtol=1e-4, atol=1e-5))
    return DenseLayer(step, tuple(f"{c.name} {type(c.module).__name__}" for c in leaves), matches)


def gives_logits(trace: Trace) -> bool:
    """The declared head is a dense layer whose output in the pass is the network's logits (the
    layer the gradient step of the page differentiates): a head that is a parameter, or a
    module after which the network still computes something, is not."""
    call = trace.call_of(trace.head)
    if call is None or not isinstance(call.module, nn.Linear) or call.output is None:
        return False
    out = call.output.float()
    return out.shape == trace.logits.shape and bool(torch.allclose(out, trace.logits, rtol=1e-4, atol=1e-5))


def _between(leaves: list[Call]) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """(scale, shift, activation name) of the modules between two dense layers: batch
    normalisation folded into a per-unit scale and shift, one activation of ACTIVATIONS; the
    activation is None when some module is none of those (the step then cannot stand for them)."""
    scale = shift = None
    activation = "identity"
    for call in leaves:
        module = call.module
        if isinstance(module, PASS_THROUGH):
            continue
        if isinstance(module, nn.BatchNorm1d) and scale is None and activation == "identity" \
                and module.running_var is not None:
            scale = (module.weight if module.affine else torch.ones_like(module.running_var)).detach().double() \
                / torch.sqrt(module.running_var.double() + module.eps)
            bias = module.bias.detach().double() if module.affine else torch.zeros_like(scale)
            shift = (bias - module.running_mean.double() * scale).cpu().numpy()
            scale = scale.cpu().numpy()
        elif type(module) in ACTIVATION_NAMES and activation == "identity" and \
                getattr(module, "negative_slope", 0.01) == 0.01:
            activation = ACTIVATION_NAMES[type(module)]
        else:
            return scale, shift, None
    return scale, shift, activation


def head_input(trace: Trace) -> np.ndarray | None:
    """The declared head's input, flattened (D,) float64, when the head is a dense layer giving
    the logits (``gives_logits``); else None."""
    call = trace.call_of(trace.head)
    if not gives_logits(trace) or call.input is None:
        return None
    return call.input[0].flatten().double().numpy()


# ----------------------------------------------------------------------------- pictures of layers

@dataclass(frozen=True)
class FirstLayer:
    """The weights of the network's first dense or conv layer: ``kind`` "dense" with ``weight``
    (units, inputs), or "conv" with ``weight`` (out, in, kh, kw); ``shown``: the units or filters
    shown, the most active first (by activation, or by the mean of the filter's output map)."""

    name: str
    kind: str
    weight: np.ndarray
    shown: tuple[int, ...]


def first_layer(trace: Trace, dense: list[DenseLayer], count: int = 16) -> FirstLayer | None:
    """The first layer's weights and the ``count`` units or filters to show (None: no such layer)."""
    call = trace.first
    if call is None:
        return None
    weight = call.module.weight.detach().float().cpu().numpy()
    if isinstance(call.module, nn.Linear):
        kind, step = "dense", next((d.step for d in dense if d.step.name == call.name), None)
        strength = step.a if step is not None else weight @ call.input[0].flatten().float().numpy()
    else:  # a convolution: how strongly each filter's map responds, on average
        kind, strength = "conv", call.output[0].float().mean(dim=(1, 2)).numpy()
    shown = tuple(int(i) for i in np.argsort(-strength, kind="stable")[:count])
    return FirstLayer(call.name, kind, weight, shown)


@dataclass(frozen=True)
class StageMap:
    """A stage's feature maps for the input: ``maps`` (C, h, w) float32 from module ``name``."""

    name: str
    maps: np.ndarray


def stage_maps(trace: Trace) -> list[StageMap]:
    """One map per spatial resolution of the feature extractor (the calls before the declared
    feature layer), in the order the resolutions first appear: the output of the last module called
    once that finishes at that resolution. A 1x1 resolution (a global pool) has no picture to show."""
    latest: dict[tuple[int, int], int] = {}
    for i, call in enumerate(trace.calls[:trace.boundary]):
        out = call.output
        if out is not None and out.ndim == 4 and out.shape[2] * out.shape[3] > 1 and trace.counts[call.name] == 1:
            latest[tuple(call.output.shape[2:])] = i  # keeps the resolution's first place in order
    return [StageMap(trace.calls[i].name, trace.calls[i].output[0].float().cpu().numpy()) for i in latest.values()]


def grad_cam_layer(trace: Trace, stages: list[StageMap]) -> str | None:
    """The stage Grad-CAM reads: the last one with more than one position, when the network keeps
    maps past its first layer (a conv network; not a patch embedding followed by attention)."""
    first = trace.first.name if trace.first is not None else None
    usable = [s for s in stages if s.name != first]
    return usable[-1].name if usable else None
