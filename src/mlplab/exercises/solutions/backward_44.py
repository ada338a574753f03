"""Worked solution of exercise 4.4: the backward pass of the lesson's two-layer binary classifier."""

from mlplab.scratch.network import relu, relu_grad, sigmoid


def backward(X, y, W1, b1, W2, b2):
    """dL/dW1, dL/db1, dL/dW2, dL/db2 of the mean binary cross-entropy; one sample per row (X is n x m)."""
    z1 = X @ W1 + b1
    a1 = relu(z1)
    z2 = a1 @ W2 + b2
    y_hat = sigmoid(z2)

    n = len(X)
    # Per sample, dBCE/dy_hat = (y_hat - y) / (y_hat (1 - y_hat)) and sigmoid' = y_hat (1 - y_hat): they cancel,
    # leaving the lesson's y_hat - y. L is the mean over n samples, so each sample's share is (y_hat - y) / n.
    dz2 = (y_hat - y) / n  # (n, 1)
    # z2 = a1 W2 + b2: each W2[j] meets a1[:, j] in every sample, so the factors go in the order of the shapes:
    # (h, n) @ (n, 1) = (h, 1), W2's shape. The lesson's dz2 · a1ᵀ is (n, 1)(h, n): it does not multiply.
    dW2 = a1.T @ dz2
    # b2 is added to every row: its gradient sums the rows' gradients (the lesson's dL/db2 = dL/dz2 is n x 1).
    db2 = dz2.sum(axis=0)  # (1,)
    # Back through W2: (n, 1) @ (1, h) = (n, h), a1's shape; the lesson's dz2 · W2 lacks the transpose.
    da1 = dz2 @ W2.T
    # ReLU passes the gradient where z1 > 0 and stops it elsewhere.
    dz1 = da1 * relu_grad(z1)
    dW1 = X.T @ dz1  # (m, n) @ (n, h) = (m, h), W1's shape
    db1 = dz1.sum(axis=0)  # (h,): one sum per hidden unit
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
