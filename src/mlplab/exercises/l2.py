"""Exercise l2: the L2 penalty (§3.4 names L1/L2 regularization) and its gradient, in the lab's convention."""

import numpy as np

from mlplab.exercises.checking import (
    Finding,
    Stop,
    Text,
    as_array,
    call,
    index_text,
    numerical_gradient,
    relative_error,
    right,
    wrong,
)

ID = "l2"
SECTION = "§3.4"
TITLE = Text("L2 正则化", "L2 regularization")
TEMPLATE = '''\
"""练习 l2 · L2 正则化（课程 §3.4）/ Exercise l2 · L2 regularization (the lesson's §3.4)

课程 §3.4 只提到了 L1/L2 正则化的名字。本项目的 regularization=l2 在损失上加 lam * sum(w^2)，
不带 1/2（src/mlplab/penalties.py 的 L2：strength * sum w^2），所以它的梯度是 2 * lam * w。
The lesson's §3.4 only names L1/L2 regularization. The lab's regularization=l2 adds lam * sum(w^2) to the loss,
with no 1/2 (src/mlplab/penalties.py's L2: strength * sum w^2), so its gradient is 2 * lam * w.

检查 / check:  python -m mlplab.exercises check l2
"""

import numpy as np


def l2_penalty(weights, lam):
    """weights: 权重矩阵的 list（没有偏置）/ a list of weight matrices (no biases);  lam: 正则化强度 / the strength.

    返回 lam 乘以所有权重的平方和，一个 float / return lam times the sum of every weight squared, a float.
    """
    raise NotImplementedError("L2 惩罚项还没写 / the L2 penalty is not written yet")


def l2_gradient(weights, lam):
    """l2_penalty 对每个权重矩阵的梯度：list，每个与它的矩阵同形。
    The gradient of l2_penalty with respect to each weight matrix: a list, each of its matrix's shape.
    """
    raise NotImplementedError("L2 的梯度还没写 / the L2 gradient is not written yet")
'''

LAM = 0.01


def lab_penalty(weights: list[np.ndarray], lam: float) -> float:
    """The lab's own L2 (regularization=l2), so that this exercise's convention cannot drift from the lab's."""
    import torch  # here, not at the top: `list` and `start` need not wait for torch

    from mlplab.penalties import L2

    return float(L2(lam)([torch.from_numpy(w) for w in weights]))


def check(module: object) -> list[Finding]:
    rng = np.random.default_rng(35)
    weights = [rng.standard_normal((4, 3)), rng.standard_normal((3, 2))]
    return [penalty(module, weights), gradient(module, weights)]


def penalty(module: object, weights: list[np.ndarray]) -> Finding:
    what = Text("惩罚项", "the penalty")
    got = as_array(call(module, "l2_penalty", [w.copy() for w in weights], LAM))
    expected = lab_penalty(weights, LAM)
    if got is None or got.size != 1:
        return wrong(what, "应返回一个数（float）", "should return one number (a float)")
    if np.isclose(float(got), expected, rtol=1e-10):
        return right(
            what,
            f"{float(got):.6f}，与本项目 regularization=l2 的 lam * sum(w^2) 相同",
            f"{float(got):.6f}, the lab's regularization=l2, lam * sum(w^2)",
        )
    message = Text(
        f"应为 lam * sum(w^2) = {expected:.6f}，得到 {float(got):.6f}",
        f"should be lam * sum(w^2) = {expected:.6f}, got {float(got):.6f}",
    )
    if np.isclose(float(got), expected / 2, rtol=1e-10):
        message += Text(
            "：这是 lam/2 * sum(w^2) 的约定（torch 的 weight_decay 对应它）；本项目的 regularization=l2 不带 1/2",
            ": that is the lam/2 * sum(w^2) convention (torch's weight_decay's); the lab's regularization=l2 has "
            "no 1/2",
        )
    return Finding(False, what, message)


def gradient(module: object, weights: list[np.ndarray]) -> Finding:
    """Against central differences of the lab's penalty, matrix by matrix."""
    what = Text("梯度", "the gradient")
    got = call(module, "l2_gradient", [w.copy() for w in weights], LAM)
    if not isinstance(got, list | tuple) or len(got) != len(weights):
        raise Stop(
            wrong(
                what,
                f"应返回一个 list，{len(weights)} 个数组，每个权重矩阵一个",
                f"should return a list of {len(weights)} arrays, one per weight matrix",
            )
        )
    for number, (value, w) in enumerate(zip(got, weights, strict=True)):
        array = as_array(value)
        if array is None or array.shape != w.shape:
            shape = "?" if array is None else str(array.shape)
            return wrong(
                what,
                f"第 {number} 个应与它的矩阵同形 {w.shape}，得到 {shape}",
                f"number {number} should have its matrix's shape {w.shape}, got {shape}",
            )
        numeric = numerical_gradient(lambda: lab_penalty(weights, LAM), weights[number])  # noqa: B023 (called here)
        error, where = relative_error(array, numeric)
        if error >= 1e-7:
            message = Text(
                f"第 {number} 个矩阵的相对误差 {error:.1e}（最大的在 {index_text(where)}），应小于 1e-7",
                f"matrix {number}: relative error {error:.1e} (largest at {index_text(where)}), should be below 1e-7",
            )
            if np.allclose(array, LAM * w):
                message += Text(
                    "：lam * w 是 lam/2 * sum(w^2) 的梯度；lam * sum(w^2) 的梯度是 2 * lam * w",
                    ": lam * w is the gradient of lam/2 * sum(w^2); that of lam * sum(w^2) is 2 * lam * w",
                )
            return Finding(False, what, message)
    return right(
        what,
        "与本项目 L2 惩罚项的数值梯度相符（相对误差 < 1e-7）：2 * lam * w",
        "agrees with the numerical gradient of the lab's L2 penalty (relative error < 1e-7): 2 * lam * w",
    )
