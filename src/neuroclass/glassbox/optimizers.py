"""Gradient descent and its refinements: each ``step(params)`` moves every parameter a little
against its gradient, in place, scaled by the learning rate ``lr``.

The penalties come first: L2 adds ``l2 * W`` to a weight's gradient (the gradient of
``l2 / 2 * sum W^2``: "weight decay"), L1 adds ``l1 * sign(W)`` (of ``l1 * sum |W|``), to the
parameters marked ``penalised`` (dense weights). The formulas follow torch.optim's documentation
for the same settings, which the tests check step by step. A network's parameters are views of
one buffer (``parameters.FlatParams``): the update then runs once over the whole buffer.

>>> from neuroclass.glassbox.layers import Param
>>> w = Param("w", np.ones(2, np.float32), np.full(2, 0.5, np.float32), True)
>>> SGD(lr=0.1).step([w]); w.value
array([0.95, 0.95], dtype=float32)
"""
from __future__ import annotations

import math

import numpy as np

from neuroclass.glassbox.layers import Param
from neuroclass.glassbox.parameters import FlatParams


def add_penalties(params: list[Param], l1: float, l2: float) -> None:
    """Add the L1 / L2 penalties' gradients to each penalised parameter's ``grad``, in place."""
    if not (l1 or l2):
        return
    for p in params:
        if not p.penalised:
            continue
        if l2:
            p.grad += l2 * p.value
        if l1:
            p.grad += l1 * np.sign(p.value)


# steps between two flushes of the optimisers' subnormal numbers (``flush_subnormal``)
FLUSH_EVERY = 16


def flush_subnormal(*stores: dict[str, np.ndarray]) -> None:
    """Set the subnormal numbers of every array in ``stores`` to zero, in place: those nearer to 0
    than float32's smallest normal number, 1.2e-38, but not 0.

    A running average of a gradient that stays at zero (the weights of a pixel that is blank in
    every image of a batch) shrinks by the same factor at every step and reaches them after some
    hundreds of steps; x86 processors compute with them many times slower than with other numbers
    (with 3% of Adam's m subnormal, a Fashion-MNIST epoch took half as long again). TensorFlow has
    the processor flush them to zero (torch does when told to: ``torch.set_flush_denormal``), a
    setting NumPy does not offer; numbers this small move no weight, so zero does as well.
    """
    for store in stores:
        for array in store.values():
            array[np.abs(array) < np.finfo(array.dtype).tiny] = 0


def spans(params: list[Param]) -> list[Param]:
    """What an update goes over: the one buffer that a network's parameters are views of
    (``FlatParams.flat``), else each parameter. The formulas treat every number on its own, so both
    give the same numbers; one NumPy call over the buffer costs about what one call over one small
    parameter does."""
    return [params.flat] if isinstance(params, FlatParams) else params


def state(store: dict[str, np.ndarray], p: Param) -> np.ndarray:
    """The optimiser's array for parameter ``p`` in ``store``: zeros like it at first, then the same
    array at every step (updated in place, never allocated again)."""
    array = store.get(p.name)
    if array is None:
        array = store[p.name] = np.zeros_like(p.value)
    return array


class SGD:
    """Plain gradient descent: w <- w - lr * g (Rumelhart, Hinton & Williams 1986).

    With ``momentum`` mu > 0, a velocity accumulates the gradients: v <- mu v + g; w <- w - lr v
    (Polyak 1964's heavy ball, in torch.optim.SGD's form), so steps grow along directions the
    gradient keeps pointing to and cancel where it zig-zags.
    """

    def __init__(self, lr: float, momentum: float = 0.0, l1: float = 0.0, l2: float = 0.0) -> None:
        self.lr, self.momentum, self.l1, self.l2 = lr, momentum, l1, l2
        self.t = 0  # steps taken
        self.velocity: dict[str, np.ndarray] = {}
        self.scratch: dict[str, np.ndarray] = {}

    def step(self, params: list[Param]) -> None:
        add_penalties(params, self.l1, self.l2)
        self.t += 1
        for p in spans(params):
            g = p.grad
            if self.momentum:
                v = self.velocity.get(p.name)
                if v is None:  # the first step starts the velocity at the gradient, as torch does
                    v = self.velocity[p.name] = g.copy()
                else:
                    v *= self.momentum
                    v += g
                g = v
            change = state(self.scratch, p)  # reused at every step: no allocation
            np.multiply(g, self.lr, out=change)
            p.value -= change
        if self.t % FLUSH_EVERY == 0:
            flush_subnormal(self.velocity)


class RMSProp:
    """RMSProp (Hinton, Srivastava & Swersky 2012, Neural Networks for Machine Learning, lecture
    6e): each parameter's step is divided by a running root-mean-square of its recent gradients,
    s <- rho s + (1 - rho) g^2; w <- w - lr g / (sqrt(s) + eps), so that parameters with small
    gradients still move and those with large ones do not overshoot. (torch.optim.RMSprop with
    alpha=rho.)
    """

    def __init__(self, lr: float, rho: float = 0.9, eps: float = 1e-8, l1: float = 0.0, l2: float = 0.0) -> None:
        self.lr, self.rho, self.eps, self.l1, self.l2 = lr, rho, eps, l1, l2
        self.t = 0  # steps taken
        self.square: dict[str, np.ndarray] = {}
        self.scratch: dict[str, np.ndarray] = {}

    def step(self, params: list[Param]) -> None:
        add_penalties(params, self.l1, self.l2)
        self.t += 1
        for p in spans(params):
            s, tmp = state(self.square, p), state(self.scratch, p)
            s *= self.rho
            np.square(p.grad, out=tmp)
            tmp *= 1 - self.rho
            s += tmp
            np.sqrt(s, out=tmp)  # the denominator, in the same buffer
            tmp += self.eps
            np.divide(p.grad, tmp, out=tmp)
            tmp *= self.lr
            p.value -= tmp
        if self.t % FLUSH_EVERY == 0:
            flush_subnormal(self.square)


class Adam:
    """Adam (Kingma & Ba 2015, algorithm 1): running averages of the gradient (m) and of its square
    (v), corrected for starting at zero, give each parameter its own step size:
    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)  (torch.optim.Adam's form),
    computed as w <- w - alpha_t m / (sqrt(v) + eps_hat), alpha_t = lr sqrt(1 - b2^t) / (1 - b1^t),
    eps_hat = eps sqrt(1 - b2^t): the same update with both corrections folded into two numbers per
    step (Kingma & Ba 2015, end of section 2), one pass over the parameters fewer.
    """

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 l1: float = 0.0, l2: float = 0.0) -> None:
        self.lr, self.betas, self.eps, self.l1, self.l2 = lr, betas, eps, l1, l2
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.scratch: dict[str, np.ndarray] = {}

    def step(self, params: list[Param]) -> None:
        add_penalties(params, self.l1, self.l2)
        self.t += 1
        b1, b2 = self.betas
        root_correction = math.sqrt(1 - b2 ** self.t)
        alpha, eps_hat = self.lr * root_correction / (1 - b1 ** self.t), self.eps * root_correction
        for p in spans(params):
            m, v = state(self.m, p), state(self.v, p)
            tmp = state(self.scratch, p)  # reused at every step: no allocation
            m *= b1
            np.multiply(p.grad, 1 - b1, out=tmp)
            m += tmp
            v *= b2
            np.square(p.grad, out=tmp)
            tmp *= 1 - b2
            v += tmp
            np.sqrt(v, out=tmp)  # the denominator, in the same buffer
            tmp += eps_hat
            np.divide(m, tmp, out=tmp)
            tmp *= alpha
            p.value -= tmp
        if self.t % FLUSH_EVERY == 0:
            flush_subnormal(self.m, self.v)


def make_optimizer(name: str, lr: float, momentum: float, l1: float, l2: float) -> SGD | RMSProp | Adam:
    """The optimiser ``name`` (sgd, momentum, rmsprop, adam) with its defaults otherwise.

    >>> type(make_optimizer("momentum", 0.1, 0.9, 0.0, 0.0)).__name__
    'SGD'
    """
    if name in ("sgd", "momentum"):
        return SGD(lr, momentum if name == "momentum" else 0.0, l1, l2)
    if name == "rmsprop":
        return RMSProp(lr, l1=l1, l2=l2)
    return Adam(lr, l1=l1, l2=l2)
