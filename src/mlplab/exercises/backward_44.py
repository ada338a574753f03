"""Exercise 4.4: the backward pass of §4.4's two-layer binary classifier, checked against central differences."""

import itertools
import re
from pathlib import Path

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
    same,
    shape_text,
    where,
    wrong,
)
from mlplab.scratch.network import binary_cross_entropy, relu, sigmoid

ID = "4.4"
SECTION = "§4.4"
TITLE = Text("反向传播", "The backward pass")
TEMPLATE = '''\
"""练习 4.4 · 反向传播（课程 §4.4）/ Exercise 4.4 · The backward pass (the lesson's §4.4)

写出两层二分类网络的反向传播：ReLU 隐藏层，sigmoid 输出，损失是 n 个样本的二元交叉熵的平均。
Write the backward pass of the two-layer binary classifier: a ReLU hidden layer, a sigmoid output, and the
binary cross-entropy averaged over the n samples.

检查 / check:  python -m mlplab.exercises check 4.4
"""

import numpy as np

from mlplab.scratch.network import relu, relu_grad, sigmoid


def backward(X, y, W1, b1, W2, b2):
    """dL/dW1, dL/db1, dL/dW2, dL/db2 of L = -(1/n) sum_i [y_i log y_hat_i + (1 - y_i) log(1 - y_hat_i)].

    形状（每行一个样本，和课程 §4.4 的 X·W1 一样）/ shapes (one sample per row, as the lesson's X·W1):
        X  (n, m)   n 个样本，m 个特征 / n samples of m features
        y  (n, 1)   0 或 1 / 0 or 1
        W1 (m, h)   b1 (h,)   W2 (h, 1)   b2 (1,)
    返回 dict(W1=..., b1=..., W2=..., b2=...)，每个梯度的形状与它的参数相同。
    Return dict(W1=..., b1=..., W2=..., b2=...), each gradient of its parameter's shape.
    """
    # 前向传播，已经写好 / the forward pass, written for you
    z1 = X @ W1 + b1
    a1 = relu(z1)
    z2 = a1 @ W2 + b2
    y_hat = sigmoid(z2)

    # 课程 §4.4 第 4 步，逐字抄成 NumPy。在这些形状下它们有的乘不起来，有的形状不对：改对它们。
    # The lesson's step 4, copied into NumPy word for word. With these shapes some of them do not multiply and
    # some have the wrong shape: correct them.
    # dz2 = y_hat - y
    # dW2 = dz2 @ a1.T
    # db2 = dz2
    # da1 = dz2 @ W2
    # dz1 = da1 * relu_grad(z1)
    # dW1 = dz1 @ X.T
    # db1 = dz1
    # return dict(W1=dW1, b1=db1, W2=dW2, b2=db2)
    raise NotImplementedError("反向传播还没写 / the backward pass is not written yet")
'''

NAMES = ("W1", "b1", "W2", "b2")
N, M, H = 5, 3, 4  # all different: a product in the wrong order cannot multiply by chance
RIGHT, WRONG = 1e-7, 1e-2  # CS231n's thresholds for the relative error (the messages write them out)


def point() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """X, y and the parameters, in float64, with both classes and no pre-activation within 0.05 of ReLU's kink
    (central differences that straddle it would see a slope that is neither side's)."""
    for seed in itertools.count(44):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((N, M))
        y = (rng.random((N, 1)) < 0.5).astype(np.float64)
        params = {
            "W1": rng.standard_normal((M, H)),
            "b1": 0.1 * rng.standard_normal(H),
            "W2": rng.standard_normal((H, 1)),
            "b2": 0.1 * rng.standard_normal(1),
        }
        if 0 < y.sum() < N and np.abs(X @ params["W1"] + params["b1"]).min() > 0.05:
            return X, y, params
    raise AssertionError("unreachable")


def loss(X: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]) -> float:
    a1 = relu(X @ params["W1"] + params["b1"])
    return binary_cross_entropy(sigmoid(a1 @ params["W2"] + params["b2"]), y)


SHAPES = Text(
    f"这里 n = {N} 个样本、m = {M} 个特征、h = {H} 个隐藏单元：X {shape_text((N, M))}，z1 和 a1 {shape_text((N, H))}，"
    f"z2 和 y_hat {shape_text((N, 1))}；每个梯度与它的参数同形：W1 {shape_text((M, H))}，b1 {shape_text((H,))}，"
    f"W2 {shape_text((H, 1))}，b2 {shape_text((1,))}。课程 §4.4 第 4 步的几个乘积，要按这些形状调换因子的顺序、"
    "补上转置（见 docs/lesson.zh-CN.md 的订正 1）",
    f"Here n = {N} samples, m = {M} features, h = {H} hidden units: X {shape_text((N, M))}, z1 and a1 "
    f"{shape_text((N, H))}, z2 and y_hat {shape_text((N, 1))}; each gradient has its parameter's shape: W1 "
    f"{shape_text((M, H))}, b1 {shape_text((H,))}, W2 {shape_text((H, 1))}, b2 {shape_text((1,))}. To fit these "
    "shapes, the lesson's step 4 needs some factors swapped and a transpose added (docs/lesson.md, correction 1)",
)


def shapes_clash(error: ValueError, path: Path) -> Finding:
    """A product or a sum whose shapes do not fit (the lesson's step 4, copied as printed, raises this): the shapes
    of the arrays on that line, and the shapes that every array should have."""
    line, source, names = where(error, path)
    right_side = source.split("=", 1)[-1]
    operands = dict.fromkeys(n for n in re.findall(r"[A-Za-z_]\w*", right_side) if isinstance(names.get(n), np.ndarray))
    found = Text(
        "这一行里 " + "，".join(f"{n} {shape_text(names[n].shape)}" for n in operands) + "。",
        "on this line " + ", ".join(f"{n} {shape_text(names[n].shape)}" for n in operands) + ". ",
    )
    return Finding(
        False,
        same("backward"),
        Text(
            f"{path.name} 第 {line} 行 `{source}` 的形状对不上（{type(error).__name__}）：",
            f"{path.name}, line {line} `{source}`: the shapes do not fit ({type(error).__name__}): ",
        )
        + (found if operands else Text("", ""))
        + SHAPES,
    )


def check(module: object) -> list[Finding]:
    X, y, params = point()
    try:
        grads = call(module, "backward", X.copy(), y.copy(), *(params[name].copy() for name in NAMES))
    except Stop as stop:
        if isinstance(stop.error, ValueError) and any(w in str(stop.error) for w in ("matmul", "aligned", "broadcast")):
            raise Stop(shapes_clash(stop.error, Path(module.__file__ or "")), stop.error) from None
        raise
    if not isinstance(grads, dict):
        return [
            wrong(
                "backward",
                f"应返回 dict(W1=..., b1=..., W2=..., b2=...)，得到的是 {type(grads).__name__}",
                f"should return dict(W1=..., b1=..., W2=..., b2=...), got a {type(grads).__name__}",
            )
        ]
    findings = []
    for name in NAMES:
        expected = numerical_gradient(lambda: loss(X, y, params), params[name])
        findings.append(compare(name, grads.get(name), expected))
    return findings


def compare(name: str, value: object, expected: np.ndarray) -> Finding:
    """One parameter's gradient against the numerical one: its shape first (the lesson's slips show there), then
    the relative error, with the usual causes named when the numbers show them."""
    got = as_array(value)
    if got is None:
        return wrong(name, f"返回的 dict 里没有 {name} 的梯度", f"the returned dict has no gradient for {name}")
    if got.shape != expected.shape:
        want, have = shape_text(expected.shape), shape_text(got.shape)
        finding = wrong(
            name,
            f"形状应为 {want}（与 {name} 相同），得到 {have}",
            f"its shape should be {want} (that of {name}), got {have}",
        )
        if len(got.shape) == 2 and got.shape == expected.shape[::-1]:
            hint = Text(
                "：这是它的转置，乘积的两个因子顺序反了", ": that is its transpose, the product's factors are swapped"
            )
        elif got.shape == (N, *expected.shape):
            hint = Text(
                f"：每个样本一行。{name} 加到了每一行上，它的梯度要对样本求和（.sum(axis=0)）",
                f": one row per sample. {name} is added to every row, so its gradient sums over the samples "
                "(.sum(axis=0))",
            )
        else:
            hint = Text("。", ". ") + SHAPES
        return Finding(False, finding.what, finding.message + hint)
    error, where = relative_error(got, expected)
    if error < RIGHT:
        return right(name, f"相对误差 {error:.1e}", f"relative error {error:.1e}")
    text = Text(
        f"相对误差 {error:.1e}（最大的在 {index_text(where)}），应小于 1e-7",
        f"relative error {error:.1e} (largest at {index_text(where)}), should be below 1e-7",
    )
    if np.allclose(got, N * expected, rtol=1e-6, atol=0):
        hint = Text(
            f"：正好是数值梯度的 n = {N} 倍，少了 1/n（损失是 n 个样本的平均：dz2 = (y_hat - y) / n）",
            f": exactly n = {N} times the numerical gradient, the 1/n is missing (the loss is the mean over the n "
            "samples: dz2 = (y_hat - y) / n)",
        )
    elif np.allclose(got, -expected, rtol=1e-6, atol=0):
        hint = Text("：符号反了", ": its sign is flipped")
    elif error > WRONG:
        hint = Text("；大于 1e-2，这个梯度是错的", "; above 1e-2, this gradient is wrong")
    else:
        hint = Text(
            "；在 1e-7 和 1e-2 之间：接近但不精确（算的时候用了 float32？）",
            "; between 1e-7 and 1e-2: close but not exact (computed in float32?)",
        )
    return Finding(False, same(name), text + hint)
