"""A network's learned arrays kept in one contiguous float32 buffer, and their gradients in another.

Each ``Param`` (dense0.weight, dense0.bias, ...) and each layer's own attribute (``Dense.weight``)
are the same array: a view, reshaped, of a slice of the buffer. Code that reads or writes one
parameter works as with separate arrays; an optimiser, whose formulas treat every number on its
own, updates the whole buffer with one NumPy call per step of its formula instead of one per
parameter (torch's foreach and fused optimisers group their parameters for the same reason). On a
small network a NumPy call's fixed cost (about a microsecond), not its arithmetic, is much of an
update's time.

>>> from neuroclass.glassbox.layers import Dense
>>> dense = Dense("dense0", np.ones((3, 2), np.float32))
>>> params = gather([dense])
>>> params.flat.value.shape, np.shares_memory(params.flat.value, dense.weight)
((8,), True)
>>> [p.name for p in params]
['dense0.weight', 'dense0.bias']
"""
from __future__ import annotations

import numpy as np

from neuroclass.glassbox.layers import Param

F32 = np.float32


class FlatParams(list):
    """A network's parameters: a list of ``Param`` in layer order, whose values are views of one
    contiguous buffer ``flat.value`` (P,) float32 and whose gradients are views of ``flat.grad``
    (P,), P the number of learned numbers. ``flat`` is itself a Param named "parameters" (not
    penalised: the penalties apply to the weights' views, one by one)."""

    def __init__(self, params: list[Param], flat: Param) -> None:
        super().__init__(params)
        self.flat = flat

    def copied(self) -> "FlatParams":
        """Copies of the values and gradients, laid out alike (an optimiser's state fits both)."""
        flat = Param(self.flat.name, self.flat.value.copy(), self.flat.grad.copy(), False)
        return FlatParams(_views(self, flat), flat)

    def __deepcopy__(self, memo: dict) -> "FlatParams":
        # NumPy copies each view on its own: the copies would no longer share one buffer
        return self.copied()


def _views(params: list[Param], flat: Param) -> list[Param]:
    """Params of the names, shapes and penalties of ``params``, one after the other in ``flat``."""
    views, start = [], 0
    for p in params:
        end = start + p.value.size
        views.append(Param(p.name, flat.value[start:end].reshape(p.value.shape),
                           flat.grad[start:end].reshape(p.value.shape), p.penalised))
        start = end
    return views


def gather(layers: list) -> FlatParams:
    """Move the learned arrays of ``layers`` (and their gradients) into one buffer each, in layer
    order: their values are copied over, then each layer keeps its arrays there (``keep_in``)."""
    own = [p for layer in layers for p in layer.params()]
    total = sum(p.value.size for p in own)
    flat = Param("parameters", np.empty(total, F32), np.zeros(total, F32), False)
    views = _views(own, flat)
    for p, view in zip(own, views):
        view.value[...] = p.value
        view.grad[...] = p.grad
    start = 0
    for layer in layers:
        count = len(layer.params())
        if count:
            mine = views[start:start + count]
            layer.keep_in([v.value for v in mine], [v.grad for v in mine])
        start += count
    return FlatParams(views, flat)
