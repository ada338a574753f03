"""The lesson's math in NumPy, no autograd: activations, losses, and networks with a hand-written backward pass.

Shapes are row-major, as in PyTorch: a batch X is (N, inputs), a layer computes X @ W + b with W of shape
(inputs, outputs), the layout of the lesson's §4.4 (X·W⁽¹⁾, one sample per row). That fixes the order of every
product in the backward pass: where the lesson's backward products have their factors swapped or lack a transpose,
and so do not multiply, the code below has the order that makes the shapes agree (see docs/lesson.md).
Each loss is the mean over the batch, so the per-sample gradient y_hat - y becomes (y_hat - y) / N.
"""

from collections.abc import Callable, Iterator, Sequence
from itertools import islice, pairwise
from typing import Protocol

import numpy as np

from mlplab.scratch.optim import Optimizer

Params = dict[str, np.ndarray]


# Activations and their derivatives (elementwise, taken at the pre-activation z).


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


def relu_grad(z: np.ndarray) -> np.ndarray:
    return (z > 0).astype(z.dtype)


def sigmoid(z: np.ndarray) -> np.ndarray:
    # 1 / (1 + e^-z) as exp(-log(1 + e^-z)): np.logaddexp(0, -z) computes that log without overflowing e^-z.
    return np.exp(-np.logaddexp(0, -z))


def sigmoid_grad(z: np.ndarray) -> np.ndarray:
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z)


def tanh_grad(z: np.ndarray) -> np.ndarray:
    return 1 - np.tanh(z) ** 2


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax; subtracting the row maximum changes nothing mathematically and prevents overflow."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def neuron(x: np.ndarray, w: np.ndarray, b: float, f: Callable[[np.ndarray], np.ndarray] = relu) -> np.ndarray:
    """The lesson's single neuron y = f(sum_i w_i x_i + b) for one input vector x."""
    return f(np.dot(w, x) + b)


# Losses (means over the batch) and their gradients with respect to the prediction.


def _log(p: np.ndarray) -> np.ndarray:
    # A float32 sigmoid or softmax rounds to exactly 0 or 1 when it is very sure; log(0) would turn the loss into
    # inf, or nan once multiplied by a zero target.
    return np.log(np.maximum(p, np.finfo(p.dtype).tiny))


def mse(y_hat: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error (1/n) sum (y_hat - y)^2 over all n entries."""
    return float(np.mean((y_hat - y) ** 2))


def mse_grad(y_hat: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 2 * (y_hat - y) / y_hat.size


def binary_cross_entropy(y_hat: np.ndarray, y: np.ndarray) -> float:
    """-(1/N) sum [y log y_hat + (1 - y) log(1 - y_hat)] for probabilities y_hat of the class 1."""
    return float(-np.mean(y * _log(y_hat) + (1 - y) * _log(1 - y_hat)))


def binary_cross_entropy_grad(y_hat: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Times sigmoid'(z) = y_hat (1 - y_hat) this becomes (y_hat - y) / N: the lesson's y_hat - y (§4.4) with the 1/N
    # of the batch mean. The backward passes use that.
    return (y_hat - y) / (y_hat * (1 - y_hat)) / y_hat.size


def one_hot(labels: np.ndarray, classes: int, dtype: type = np.float64) -> np.ndarray:
    return np.eye(classes, dtype=dtype)[labels]


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """-(1/N) sum_n sum_k y_nk log p_nk with y the one-hot labels: the mean of -log p[true class]."""
    return float(-np.mean(np.sum(one_hot(labels, probs.shape[1], probs.dtype) * _log(probs), axis=1)))


def he_init(n_in: int, n_out: int, rng: np.random.Generator, dtype: type) -> np.ndarray:
    """Weights drawn from N(0, 2 / n_in): keeps the variance of ReLU activations steady from layer to layer."""
    return (rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in)).astype(dtype)


# The networks. Both keep what backward needs from the last forward, so call forward, then backward.


class TwoLayerNet:
    """The lesson's binary classifier: a ReLU hidden layer, one sigmoid output, binary cross-entropy."""

    training = False  # no dropout here: the flag is the training loop's

    def __init__(self, n_in: int, n_hidden: int, rng: np.random.Generator, dtype: type = np.float32) -> None:
        self.params: Params = {
            "W1": he_init(n_in, n_hidden, rng, dtype),
            "b1": np.zeros(n_hidden, dtype),
            "W2": he_init(n_hidden, 1, rng, dtype),
            "b2": np.zeros(1, dtype),
        }

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Probabilities y_hat (N, 1) that each row of X (N, n_in) is of the class 1."""
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        z1 = X @ W1 + b1
        a1 = relu(z1)
        z2 = a1 @ W2 + b2
        y_hat = sigmoid(z2)
        self.X, self.z1, self.a1 = X, z1, a1
        return y_hat

    def backward(self, y_hat: np.ndarray, y: np.ndarray) -> Params:
        """Gradients of the mean binary cross-entropy for targets y (N, 1) of 0 and 1."""
        X, z1, a1, W2 = self.X, self.z1, self.a1, self.params["W2"]
        dz2 = (y_hat - y) / len(y)  # y_hat - y per sample: the derivatives of the sigmoid and the BCE cancel
        dW2 = a1.T @ dz2  # (hidden, 1) = (hidden, N) @ (N, 1)
        db2 = dz2.sum(axis=0)  # b2 was added to every row: its gradient sums over them
        da1 = dz2 @ W2.T  # (N, hidden) = (N, 1) @ (1, hidden)
        dz1 = da1 * relu_grad(z1)
        dW1 = X.T @ dz1  # (n_in, hidden) = (n_in, N) @ (N, hidden)
        db1 = dz1.sum(axis=0)
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    loss = staticmethod(binary_cross_entropy)

    @staticmethod
    def predict(y_hat: np.ndarray) -> np.ndarray:
        return y_hat > 0.5


class SoftmaxMLP:
    """The multi-class version: ReLU hidden layers of any sizes, a softmax output, cross-entropy.

    sizes=(784, 512, 256, 10) is the lesson's MLP. Layer l has weights W{l} and biases b{l}, l = 1..L. The
    lesson's regularization (§3.4): `l2` adds l2 * sum of the squared weights to the loss; `dropout` zeroes each
    hidden unit with that probability while training (`training` is True) and scales the others by 1 / (1 - p),
    so that evaluation needs no change.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        rng: np.random.Generator,
        dtype: type = np.float32,
        l2: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        self.depth, self.rng, self.l2, self.dropout = len(sizes) - 1, rng, l2, dropout
        self.training = False
        self.params: Params = {}
        for layer, (n_in, n_out) in enumerate(pairwise(sizes), start=1):
            self.params[f"W{layer}"] = he_init(n_in, n_out, rng, dtype)
            self.params[f"b{layer}"] = np.zeros(n_out, dtype)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) for the rows of X."""
        self.inputs, self.z = [], []  # each layer's input a_{l-1} and pre-activation z_l, for backward
        self.masks: dict[int, np.ndarray] = {}  # the dropout mask of each hidden layer, while training
        a = X
        for layer in range(1, self.depth + 1):
            z = a @ self.params[f"W{layer}"] + self.params[f"b{layer}"]
            self.inputs.append(a)
            self.z.append(z)
            a = relu(z) if layer < self.depth else softmax(z)
            if self.training and self.dropout and layer < self.depth:
                keep = self.rng.random(a.shape) >= self.dropout
                self.masks[layer] = keep.astype(a.dtype) / a.dtype.type(1 - self.dropout)
                a = a * self.masks[layer]
        return a

    def backward(self, probs: np.ndarray, labels: np.ndarray) -> Params:
        """Gradients of the mean cross-entropy for integer labels (N,)."""
        grads: Params = {}
        dz = (probs - one_hot(labels, probs.shape[1], probs.dtype)) / len(labels)  # softmax + CE: dL/dz = p - y
        for layer in range(self.depth, 0, -1):
            grads[f"W{layer}"] = self.inputs[layer - 1].T @ dz
            grads[f"W{layer}"] += 2 * self.l2 * self.params[f"W{layer}"]  # d/dW of l2 * sum(W ** 2)
            grads[f"b{layer}"] = dz.sum(axis=0)
            if layer > 1:  # carry dL/dz back through W and the ReLU of the layer below
                dz = (dz @ self.params[f"W{layer}"].T) * relu_grad(self.z[layer - 2])
                if layer - 1 in self.masks:  # a dropped unit passed nothing forward, so gets nothing back
                    dz = dz * self.masks[layer - 1]
        return grads

    def loss(self, probs: np.ndarray, labels: np.ndarray) -> float:
        """The mean cross-entropy; while training, plus the L2 penalty that backward differentiates too."""
        if not (self.training and self.l2):
            return cross_entropy(probs, labels)
        penalty = sum(float(np.sum(self.params[f"W{layer}"] ** 2)) for layer in range(1, self.depth + 1))
        return cross_entropy(probs, labels) + self.l2 * penalty

    @staticmethod
    def predict(probs: np.ndarray) -> np.ndarray:
        return probs.argmax(axis=1)


# Training: mini-batches, one optimizer step per batch.


class Network(Protocol):
    params: Params
    training: bool  # dropout is on while it is True

    def forward(self, X: np.ndarray) -> np.ndarray: ...
    def backward(self, output: np.ndarray, y: np.ndarray) -> Params: ...
    def loss(self, output: np.ndarray, y: np.ndarray) -> float: ...
    def predict(self, output: np.ndarray) -> np.ndarray: ...


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Index arrays covering range(n) in batches, in a fresh random order when rng is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def train_epoch(
    net: Network,
    optimizer: Optimizer,
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    limit: int | None = None,
) -> tuple[float, float]:
    """One shuffled pass over (X, y), or its first `limit` batches; the mean loss and accuracy of those batches."""
    loss_sum = correct = seen = 0.0
    net.training = True
    for index in islice(batches(len(y), batch_size, rng), limit):
        output = net.forward(X[index])
        optimizer.step(net.params, net.backward(output, y[index]))
        loss_sum += net.loss(output, y[index]) * len(index)
        correct += np.sum(net.predict(output) == y[index])
        seen += len(index)
    net.training = False
    return loss_sum / seen, float(correct / seen)


def evaluate(net: Network, X: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> tuple[float, float]:
    """Mean loss and accuracy over (X, y), without training."""
    loss_sum = correct = 0.0
    for index in batches(len(y), batch_size):
        output = net.forward(X[index])
        loss_sum += net.loss(output, y[index]) * len(index)
        correct += np.sum(net.predict(output) == y[index])
    return loss_sum / len(y), float(correct / len(y))
