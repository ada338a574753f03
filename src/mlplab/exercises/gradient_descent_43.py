"""Exercise 4.3: one step of gradient descent, w <- w - lr dL/dw, on every parameter of a dict."""

import numpy as np

from mlplab.exercises.checking import Finding, Text, as_array, call, right, shape_text, wrong

ID = "4.3"
SECTION = "§4.3"
TITLE = Text("梯度下降", "Gradient descent")
TEMPLATE = '''\
"""练习 4.3 · 梯度下降（课程 §4.3）/ Exercise 4.3 · Gradient descent (the lesson's §4.3)

对每一个参数 w 走一步梯度下降：w <- w - lr * dL/dw（lr 就是课程里的学习率 η）。
One step of gradient descent on every parameter w: w <- w - lr * dL/dw (lr is the lesson's learning rate η).

检查 / check:  python -m mlplab.exercises check 4.3
"""

import numpy as np


def gradient_descent(params, grads, lr):
    """params: dict 参数名 -> np.ndarray（如 W1、b1）/ name -> np.ndarray (W1, b1, ...);
    grads: 同样的名字，每个梯度与它的参数同形 / the same names, each gradient of its parameter's shape;
    lr: 学习率 / the learning rate.

    返回一个新的 dict，装着更新后的参数；不要改动 params 本身。
    Return a new dict of the updated parameters; leave params itself unchanged.
    """
    raise NotImplementedError("梯度下降还没写 / gradient descent is not written yet")
'''

LR = 0.1


def check(module: object) -> list[Finding]:
    rng = np.random.default_rng(43)
    params = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4), "W2": rng.standard_normal((4, 1))}
    grads = {name: rng.standard_normal(p.shape) for name, p in params.items()}
    before = {name: p.copy() for name, p in params.items()}
    new = call(module, "gradient_descent", params, grads, LR)
    names = Text("参数名", "the names")
    if not isinstance(new, dict) or set(new) != set(params):
        got = sorted(new) if isinstance(new, dict) else type(new).__name__
        return [
            wrong(
                names,
                f"应返回一个 dict，名字与 params 相同 {sorted(params)}，得到 {got}",
                f"should return a dict with the names of params {sorted(params)}, got {got}",
            )
        ]
    findings = [right(names, "与 params 相同", "the same as params'")]
    findings.append(update(new, before, grads))
    unchanged = all(np.array_equal(params[name], before[name]) for name in params)
    findings.append(
        right("params", "没有被改动", "left unchanged")
        if unchanged
        else wrong(
            "params",
            "被就地改动了：返回新的数组（如 w - lr * g），别写 w -= ...，调用的人还要用更新前的值",
            "changed in place: return new arrays (w - lr * g), not w -= ...; the caller still needs the old values",
        )
    )
    if all(f.ok for f in findings):
        findings.append(descends(module))
    return findings


def update(new: dict, before: dict, grads: dict) -> Finding:
    what = Text("更新", "the update")
    for name in before:
        got, expected = as_array(new[name]), before[name] - LR * grads[name]
        if got is not None and got.shape == expected.shape and np.allclose(got, expected, rtol=1e-12, atol=1e-12):
            continue
        hint = Text("", "")
        if got is None:
            hint = Text(f"：得到的是 {type(new[name]).__name__}", f": got a {type(new[name]).__name__}")
        elif got.shape != expected.shape:
            want, have = shape_text(expected.shape), shape_text(got.shape)
            hint = Text(f"：形状应为 {want}，得到 {have}", f": its shape should be {want}, got {have}")
        elif np.allclose(got, before[name] + LR * grads[name]):
            hint = Text(
                "：符号反了，w + lr * g 是沿着梯度往上走，损失会变大",
                ": the sign is flipped: w + lr * g climbs along the gradient, and the loss grows",
            )
        elif np.allclose(got, before[name] - grads[name]):
            hint = Text("：少了学习率 lr", ": the learning rate lr is missing")
        return Finding(
            False,
            what,
            Text(f"{name} 应为 w - lr * g（lr = {LR}）", f"{name} should be w - lr * g (lr = {LR})") + hint,
        )
    return right(what, f"每个参数都是 w - lr * g（lr = {LR}）", f"every parameter is w - lr * g (lr = {LR})")


def descends(module: object) -> Finding:
    """Many steps on L(w) = sum (w - t)^2, whose minimum is t: right steps walk there."""
    target = np.array([1.0, -2.0, 0.5])
    params = {"w": np.zeros(3)}
    start = float(np.sum((params["w"] - target) ** 2))
    for _ in range(100):
        params = call(module, "gradient_descent", params, {"w": 2 * (params["w"] - target)}, LR)
    end = float(np.sum((params["w"] - target) ** 2))
    what = Text("下降", "descent")
    if end < 1e-12:
        return right(
            what,
            f"在 L(w) = sum (w - t)^2 上走 100 步，损失从 {start:.2f} 降到 {end:.1e}",
            f"100 steps on L(w) = sum (w - t)^2 take the loss from {start:.2f} to {end:.1e}",
        )
    return wrong(what, f"100 步后损失还有 {end:.3g}（从 {start:.2f} 开始）", f"after 100 steps the loss is {end:.3g}")
