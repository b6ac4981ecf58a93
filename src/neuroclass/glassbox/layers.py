"""The glass-box network's layers, each one's backward pass right beside its forward pass.

Every layer takes a batch of rows, ``x`` (B, D) float32, and keeps what its backward pass needs.
``forward(x, train)`` returns the layer's output; ``backward(grad)`` takes dL/d(output) of the same
shape and returns dL/d(input), after writing dL/d(parameter) into each ``Param.grad`` in place.
Backpropagation (Rumelhart, Hinton & Williams 1986, "Learning representations by back-propagating
errors") is nothing more than calling ``backward`` from the last layer to the first: each layer
applies the chain rule to its own small piece of the computation.

>>> dense = Dense("dense0", np.ones((3, 2), np.float32))
>>> dense.forward(np.ones((1, 3), np.float32), train=False)
array([[3., 3.]], dtype=float32)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

F32 = np.float32


@dataclass
class Param:
    """A learned array and its gradient, both float32 and of the same shape, updated in place.

    ``penalised``: L1 / L2 penalties apply to it (the weights of dense layers; not the biases, nor
    batch normalisation's scale and shift, which a penalty would only pull towards a fixed value).
    """

    name: str
    value: np.ndarray
    grad: np.ndarray
    penalised: bool


# ----------------------------------------------------------------------------- dense

class Dense:
    """z = x W + b: each output neuron's weighted sum of all the inputs, plus its bias.

    ``weight``: (D_in, D_out) float32, one column per neuron (the explainers' W x with W
    transposed, so that a batch of rows multiplies at once); ``bias``: (D_out,), zeros at first.
    ``input_grad``: whether backward returns dL/dx (the first layer's inputs are the data: no need).
    """

    def __init__(self, name: str, weight: np.ndarray, input_grad: bool = True) -> None:
        self.name, self.input_grad = name, input_grad
        self.weight = np.ascontiguousarray(weight, dtype=F32)  # (D_in, D_out)
        self.bias = np.zeros(weight.shape[1], F32)  # (D_out,)
        self.grad_weight, self.grad_bias = np.zeros_like(self.weight), np.zeros_like(self.bias)
        self.x: Optional[np.ndarray] = None

    def params(self) -> list[Param]:
        return [Param(f"{self.name}.weight", self.weight, self.grad_weight, True),
                Param(f"{self.name}.bias", self.bias, self.grad_bias, False)]

    def keep_in(self, values: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Keep the weight and bias (already copied there) and their gradients in these arrays from
        now on, in the order of ``params()``: views of the network's one buffer (``parameters``)."""
        (self.weight, self.bias), (self.grad_weight, self.grad_bias) = values, grads

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.x = x  # (B, D_in), the inputs each weight multiplied: backward needs them
        z = x @ self.weight  # (B, D_in) @ (D_in, D_out) -> (B, D_out)
        z += self.bias  # (B, D_out) + (D_out,)
        return z

    def backward(self, grad_z: np.ndarray) -> Optional[np.ndarray]:
        # dL/dW[i, j] = sum over the batch of x[b, i] * dL/dz[b, j]; np.dot, not matmul: for one
        # example (an outer product) NumPy's matmul is several times slower than BLAS through dot
        np.dot(self.x.T, grad_z, out=self.grad_weight)  # (D_in, B) @ (B, D_out) -> (D_in, D_out)
        # dL/db[j] = sum over the batch of dL/dz[b, j]: a row of ones times grad_z, which BLAS does
        # faster than NumPy's sum down the columns of a row-major array
        np.dot(np.ones(len(grad_z), grad_z.dtype), grad_z, out=self.grad_bias)  # (B,) @ (B, D_out) -> (D_out,)
        if not self.input_grad:
            return None
        return grad_z @ self.weight.T  # (B, D_out) @ (D_out, D_in) -> (B, D_in)


# ----------------------------------------------------------------------------- activations

class Sigmoid:
    """a = 1 / (1 + e^-z), squashing a weighted sum into (0, 1); da/dz = a (1 - a).

    Computed as (1 + tanh(z / 2)) / 2, the same function, which never overflows for large |z|.
    """

    def __init__(self, name: str) -> None:
        self.name, self.a = name, None

    def params(self) -> list[Param]:
        return []

    def forward(self, z: np.ndarray, train: bool) -> np.ndarray:
        a = np.tanh(z * F32(0.5))  # (B, D)
        a += 1
        a *= 0.5
        self.a = a
        return a

    def backward(self, grad_a: np.ndarray) -> np.ndarray:
        return grad_a * self.a * (1 - self.a)  # (B, D): the chain rule, da/dz = a (1 - a)


class ReLU:
    """a = max(z, 0) (Nair & Hinton 2010); da/dz = 1 where z > 0, else 0."""

    def __init__(self, name: str) -> None:
        self.name, self.a = name, None

    def params(self) -> list[Param]:
        return []

    def forward(self, z: np.ndarray, train: bool) -> np.ndarray:
        self.a = np.maximum(z, 0)  # (B, D)
        return self.a

    def backward(self, grad_a: np.ndarray) -> np.ndarray:
        # the gradient passes where the neuron fired: times 1.0 there, 0.0 elsewhere (NumPy multiplies
        # two float arrays faster than a float array by a bool one, which it converts on the way)
        fired = np.greater(self.a, 0, out=np.empty_like(grad_a))  # (B, D)
        fired *= grad_a
        return fired


class Tanh:
    """a = tanh(z), in (-1, 1) and centred on 0 (LeCun et al. 1998); da/dz = 1 - a^2."""

    def __init__(self, name: str) -> None:
        self.name, self.a = name, None

    def params(self) -> list[Param]:
        return []

    def forward(self, z: np.ndarray, train: bool) -> np.ndarray:
        self.a = np.tanh(z)  # (B, D)
        return self.a

    def backward(self, grad_a: np.ndarray) -> np.ndarray:
        return grad_a * (1 - self.a * self.a)  # (B, D)


class Softmax:
    """p_k = e^z_k / sum_j e^z_j: K scores to K probabilities that add up to 1.

    Its backward is the product with the Jacobian dp_k/dz_j = p_k (delta_kj - p_j). (With the
    cross-entropy loss the two fuse into p - onehot(y): losses.SoftmaxCrossEntropy.)
    """

    def __init__(self, name: str) -> None:
        self.name, self.p = name, None

    def params(self) -> list[Param]:
        return []

    def forward(self, z: np.ndarray, train: bool) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))  # (B, K); shifted so that exp never overflows
        self.p = e / e.sum(axis=1, keepdims=True)  # (B, K) / (B, 1)
        return self.p

    def backward(self, grad_p: np.ndarray) -> np.ndarray:
        inner = (grad_p * self.p).sum(axis=1, keepdims=True)  # (B, 1): sum_j dL/dp_j p_j
        return self.p * (grad_p - inner)  # (B, K)


ACTIVATION_LAYERS = {"sigmoid": Sigmoid, "relu": ReLU, "tanh": Tanh, "softmax": Softmax}


# ----------------------------------------------------------------------------- regularisation

class Dropout:
    """Inverted dropout (Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014): in
    training, each unit is kept with probability 1 - rate and the kept ones are scaled by
    1 / (1 - rate), so that evaluation (which keeps every unit, unscaled) sees the same average.

    ``mask``: the (B, D) float32 factors of the last training forward (0 or 1 / (1 - rate)), None
    in evaluation; ``rng``: where the masks are drawn from (seeded by the network).
    """

    def __init__(self, name: str, rate: float, rng: np.random.Generator) -> None:
        self.name, self.rate, self.rng = name, rate, rng
        self.mask: Optional[np.ndarray] = None

    def params(self) -> list[Param]:
        return []

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if not train or self.rate == 0:
            self.mask = None
            return x
        keep = 1.0 - self.rate
        self.mask = (self.rng.random(x.shape, dtype=F32) < keep).astype(F32)  # (B, D) of 0 and 1
        self.mask *= 1.0 / keep
        return x * self.mask

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad if self.mask is None else grad * self.mask  # dropped units pass no gradient


class BatchNorm:
    """Batch normalisation (Ioffe & Szegedy 2015, algorithm 1): each unit's weighted sum is
    standardised with the batch's mean and variance, then scaled and shifted by learned gamma
    (``weight``) and beta (``bias``): y = gamma (x - mean) / sqrt(var + eps) + beta.

    Training uses the batch's statistics and keeps running averages of them (``running_mean``,
    ``running_var``: new = (1 - momentum) old + momentum batch, with the unbiased variance, as
    torch.nn.BatchNorm1d does); evaluation uses the running averages. All arrays (D,) float32.
    """

    def __init__(self, name: str, width: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        self.name, self.momentum, self.eps = name, momentum, eps
        self.weight, self.bias = np.ones(width, F32), np.zeros(width, F32)
        self.grad_weight, self.grad_bias = np.zeros_like(self.weight), np.zeros_like(self.bias)
        self.running_mean, self.running_var = np.zeros(width, F32), np.ones(width, F32)
        self.x_hat = self.inv_std = None
        self.train = False

    def params(self) -> list[Param]:
        return [Param(f"{self.name}.weight", self.weight, self.grad_weight, False),
                Param(f"{self.name}.bias", self.bias, self.grad_bias, False)]

    def keep_in(self, values: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """As ``Dense.keep_in``: gamma and beta and their gradients live in the network's buffer."""
        (self.weight, self.bias), (self.grad_weight, self.grad_bias) = values, grads

    def buffers(self) -> dict[str, np.ndarray]:
        return {f"{self.name}.running_mean": self.running_mean, f"{self.name}.running_var": self.running_var}

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.train = train
        if train:
            mean, var = x.mean(axis=0), x.var(axis=0)  # (B, D) -> (D,), the biased variance
            n = len(x)
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
            self.running_var *= 1 - self.momentum
            self.running_var += (self.momentum * n / (n - 1)) * var  # unbiased: n / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        self.inv_std = 1 / np.sqrt(var + F32(self.eps))  # (D,)
        self.x_hat = (x - mean) * self.inv_std  # (B, D), each column of mean 0 and variance 1
        return self.x_hat * self.weight + self.bias  # (B, D)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        np.sum(grad_y * self.x_hat, axis=0, out=self.grad_weight)  # (D,)
        np.sum(grad_y, axis=0, out=self.grad_bias)  # (D,)
        grad_hat = grad_y * self.weight  # (B, D): dL/dx_hat
        if not self.train:  # fixed statistics: a plain per-unit scale
            return grad_hat * self.inv_std
        # the batch's mean and variance depend on every x too (Ioffe & Szegedy 2015, section 3):
        # dL/dx = inv_std / B * (B g - sum_b g - x_hat sum_b g x_hat), with g = dL/dx_hat
        n = len(grad_y)
        total = grad_hat.sum(axis=0)  # (D,)
        along = (grad_hat * self.x_hat).sum(axis=0)  # (D,)
        return (self.inv_std / F32(n)) * (n * grad_hat - total - self.x_hat * along)  # (B, D)
