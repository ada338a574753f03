"""One step of the lesson's network, small enough to check by hand: python scripts/worked_example.py

Two samples of two features, two hidden ReLU units, one sigmoid output, binary cross-entropy, and one step of
gradient descent, computed by the same code as scripts/from_scratch.py (mlplab.scratch.TwoLayerNet) and printed
line by line. docs/lesson.md shows this output; a test checks that the page and the command agree.
"""

import numpy as np

from mlplab.scratch.network import TwoLayerNet
from mlplab.scratch.optim import GradientDescent

X = np.array([[1.0, 2.0], [2.0, -1.0]])  # two samples (rows), two features
Y = np.array([[1.0], [0.0]])  # the first is of class 1, the second of class 0
PARAMS = {
    "W1": np.array([[0.5, -0.5], [0.25, 0.5]]),  # (inputs, hidden): column j feeds hidden unit j
    "b1": np.array([0.0, 0.5]),
    "W2": np.array([[1.0], [-1.0]]),  # (hidden, 1)
    "b2": np.array([0.25]),
}
LR = 0.5


def number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def show(name: str, value: np.ndarray | float) -> None:
    """One quantity, rounded to 4 decimals: a matrix as its rows, [[row 1], [row 2]]."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        text = number(float(array))
    elif array.ndim == 1:
        text = "[" + ", ".join(map(number, array)) + "]"
    else:
        text = "[" + ", ".join("[" + ", ".join(map(number, row)) + "]" for row in array) + "]"
    print(f"{name:<24} = {text}")


def main() -> None:
    net = TwoLayerNet(2, 2, np.random.default_rng(0), np.float64)
    net.params = {name: value.copy() for name, value in PARAMS.items()}
    print("forward pass")
    show("X (samples as rows)", X)
    y_hat = net.forward(X)
    show("z1 = X W1 + b1", net.z1)
    show("a1 = ReLU(z1)", net.a1)
    show("z2 = a1 W2 + b2", net.a1 @ net.params["W2"] + net.params["b2"])
    show("y_hat = sigmoid(z2)", y_hat)
    show("loss (mean BCE)", net.loss(y_hat, Y))
    print("backward pass")
    grads = net.backward(y_hat, Y)
    show("dL/dz2 = (y_hat - y) / N", (y_hat - Y) / len(Y))
    for name in ("W2", "b2", "W1", "b1"):
        show(f"dL/d{name}", grads[name])
    print(f"one step of gradient descent, lr {LR}")
    GradientDescent(lr=LR).step(net.params, grads)
    for name in ("W1", "b1", "W2", "b2"):
        show(f"{name} <- {name} - lr dL/d{name}", net.params[name])
    show("loss after the step", net.loss(net.forward(X), Y))


if __name__ == "__main__":
    main()
