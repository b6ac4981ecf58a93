"""The losses: how far the network's outputs are from the targets, and the gradient of that
distance with respect to the outputs, where backpropagation starts.

Both average over the batch, so that the learning rate means the same at any batch size.

>>> loss = SoftmaxCrossEntropy()
>>> round(loss.forward(np.zeros((1, 4), np.float32), np.array([2])), 4)  # log 4: all four alike
1.3863
>>> loss.backward()  # p - onehot(y), divided by the batch size
array([[ 0.25,  0.25, -0.75,  0.25]], dtype=float32)
"""
from __future__ import annotations

from typing import Optional

import numpy as np

F32 = np.float32


class SoftmaxCrossEntropy:
    """L = -mean over the batch of log p_y, where p = softmax(z) of the last layer's weighted sums.

    ``forward(z, y)``: z (B, K) float32 logits, y (B,) int64 class numbers -> the loss, a float.
    ``backward()``: dL/dz (B, K) = (p - onehot(y)) / B: softmax and cross-entropy together have
    this simple gradient (Bridle 1990), so the network applies them as one step.

    Inside, the classes run down the rows, (K, B): NumPy reduces a small array across its rows
    (axis 0) several times faster than along each of its short rows, and softmax reduces over the
    classes twice (their largest z, then the sum of the exponentials). ``p``: (K, B), likewise.
    """

    takes_logits = True  # fed the last dense layer's z, not the output layer's activation

    def __init__(self) -> None:
        self.p: Optional[np.ndarray] = None
        self.y: Optional[np.ndarray] = None
        self.examples: Optional[np.ndarray] = None  # 0, 1, ..., B-1: with y, picks each example's p_y

    def forward(self, z: np.ndarray, y: np.ndarray) -> float:
        shifted = z.T.copy()  # (K, B), one row per class
        shifted -= shifted.max(axis=0)  # (K, B) - (B,): exp of it never overflows
        e = np.exp(shifted)  # (K, B)
        total = e.sum(axis=0)  # (B,): softmax's denominators
        e /= total  # (K, B): p, each column summing to 1
        self.p, self.y, self.examples = e, y, np.arange(len(y))
        # -log p_y = log(sum_k e^z_k) - z_y, with the same shift on both terms: no second exp
        return float((np.log(total) - shifted[y, self.examples]).sum()) / len(y)

    def backward(self) -> np.ndarray:
        grad = self.p.copy()  # (K, B)
        grad[self.y, self.examples] -= 1
        grad /= len(self.y)
        return grad.T  # (B, K), a view: the dense layer's products take either layout


class SquaredError:
    """L = mean over the batch of 1/2 sum_k (target_k - output_k)^2: the classic explainers' loss
    (Rumelhart, Hinton & Williams 1986, eq. 2). Its gradient is output - target, the opposite of
    their "error = target - output", which they add to the weights (we subtract the gradient).

    ``low`` / ``high``: the target value of the wrong classes and of the right one (0.01 / 0.99 for
    sigmoid outputs, which never reach 0 or 1). ``forward(a, y)``: a (B, K) float32 outputs of the
    output layer, y (B,) int64 -> the loss, a float. ``backward()``: dL/da (B, K).
    """

    takes_logits = False  # fed the output layer's activation

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        self.low, self.high = low, high
        self.diff: Optional[np.ndarray] = None
        self.table: Optional[np.ndarray] = None

    def targets(self, y: np.ndarray, k: int) -> np.ndarray:
        """(B, K) float32: ``high`` at each row's class, ``low`` elsewhere."""
        if self.table is None or len(self.table) != k:  # row c: the targets of class c, made once
            self.table = np.full((k, k), self.low, F32)
            np.fill_diagonal(self.table, self.high)
        return self.table[y]

    def forward(self, a: np.ndarray, y: np.ndarray) -> float:
        self.diff = a - self.targets(y, a.shape[1])  # (B, K): output - target
        return float(0.5 * np.vdot(self.diff, self.diff) / len(self.diff))  # 1/2 sum of squares / B

    def backward(self) -> np.ndarray:
        return self.diff / F32(len(self.diff))  # (B, K)
