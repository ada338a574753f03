"""Exercise momentum: one step of momentum (§3.3 names it), checked over several steps against torch.optim.SGD."""

import numpy as np

from mlplab.exercises.checking import Finding, Stop, Text, as_array, call, index_text, right, wrong

ID = "momentum"
SECTION = "§3.3"
TITLE = Text("动量优化", "Momentum")
TEMPLATE = '''\
"""练习 momentum · 动量优化（课程 §3.3）/ Exercise momentum · Momentum (the lesson's §3.3)

课程 §3.3 只提到了动量优化的名字。这里用 torch.optim.SGD(momentum=...) 的公式（也是
src/mlplab/scratch/optim.py 里 Momentum 的公式）：
The lesson's §3.3 only names momentum. Here it is torch.optim.SGD(momentum=...)'s formula (that of
src/mlplab/scratch/optim.py's Momentum):

    v <- momentum * v + g
    w <- w - lr * v

检查 / check:  python -m mlplab.exercises check momentum
"""

import numpy as np


def momentum_step(w, g, v, lr, momentum):
    """一步动量优化 / one step of momentum.

    w: 一个参数（任意形状）/ a parameter (any shape);  g: 它的梯度 / its gradient (w's shape);
    v: 它的速度，第一步之前全是 0 / its velocity, zeros before the first step;
    lr: 学习率 / the learning rate;  momentum: 动量系数 μ（如 0.9）/ the momentum coefficient μ (0.9).

    返回 (新的 w, 新的 v)，都是新数组 / return (the new w, the new v), new arrays.
    """
    raise NotImplementedError("动量优化还没写 / momentum is not written yet")
'''

LR, MU, STEPS = 0.05, 0.9, 8


def _gradient(w: np.ndarray, target: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return 2 * scale * (w - target)  # of L(w) = sum scale (w - target)^2: each element its own curvature


def trajectory(w0: np.ndarray, target: np.ndarray, scale: np.ndarray, step) -> list[np.ndarray]:
    """The weights after each of STEPS steps of `step(w, g, v) -> (w, v)`, the gradient taken where w now is."""
    w, v, path = w0.copy(), np.zeros_like(w0), []
    for _ in range(STEPS):
        w, v = step(w, _gradient(w, target, scale), v)
        path.append(w)
    return path


def torch_trajectory(w0: np.ndarray, target: np.ndarray, scale: np.ndarray) -> list[np.ndarray]:
    import torch  # here, not at the top: `list` and `start` need not wait for torch

    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=LR, momentum=MU)
    path = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        (torch.tensor(scale) * (w - torch.tensor(target)) ** 2).sum().backward()
        optimizer.step()
        path.append(w.detach().numpy().copy())
    return path


# Other ways of writing momentum that a learner may have met, named when their trajectory is the learner's.
VARIANTS = {
    Text("v <- μv + (1 - μ)g 的写法（指数平均）：步长小了 1 - μ 倍；torch 的 v 里没有 (1 - μ)",
         "the form v <- μv + (1 - μ)g (an average): its steps are 1 - μ times smaller; torch's v has no (1 - μ)"):
        lambda w, g, v: (w - LR * (MU * v + (1 - MU) * g), MU * v + (1 - MU) * g),
    Text("没有用上速度 v：这是普通的梯度下降 w - lr * g", "the velocity v is not used: that is plain gradient descent"):
        lambda w, g, v: (w - LR * g, v),
    Text("符号反了", "the sign is flipped"):
        lambda w, g, v: (w + LR * (MU * v + g), MU * v + g),
}  # fmt: skip


def check(module: object) -> list[Finding]:
    rng = np.random.default_rng(33)
    w0, target, scale = rng.standard_normal((3, 2)), rng.standard_normal((3, 2)), rng.uniform(0.5, 3, (3, 2))
    what = Text(f"{STEPS} 步的轨迹", f"{STEPS} steps")

    def learner(w: np.ndarray, g: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = call(module, "momentum_step", w.copy(), g, v.copy(), LR, MU)
        if not (isinstance(result, tuple | list) and len(result) == 2):
            raise Stop(
                wrong(
                    "momentum_step",
                    f"应返回 (新的 w, 新的 v) 两个数组，得到 {type(result).__name__}",
                    f"should return the pair (new w, new v), got a {type(result).__name__}",
                )
            )
        new_w, new_v = (as_array(x) for x in result)
        if new_w is None or new_w.shape != w.shape or new_v is None or new_v.shape != w.shape:
            raise Stop(
                wrong(
                    "momentum_step",
                    f"返回的 w 和 v 都应是形状 {w.shape} 的数组",
                    f"the returned w and v should both be arrays of shape {w.shape}",
                )
            )
        return new_w, new_v

    path = trajectory(w0, target, scale, learner)
    reference = torch_trajectory(w0, target, scale)
    for step, (got, expected) in enumerate(zip(path, reference, strict=True), start=1):
        if np.allclose(got, expected, rtol=1e-10, atol=1e-12):
            continue
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(got - expected))), got.shape))
        message = Text(
            f"从第 {step} 步起与 torch.optim.SGD(lr={LR}, momentum={MU}) 不同：w{index_text(index)} 应为 "
            f"{expected[index]:.6f}，得到 {got[index]:.6f}",
            f"differs from torch.optim.SGD(lr={LR}, momentum={MU}) from step {step} on: w{index_text(index)} "
            f"should be {expected[index]:.6f}, got {got[index]:.6f}",
        )
        for name, variant in VARIANTS.items():
            if np.allclose(trajectory(w0, target, scale, variant)[-1], path[-1], rtol=1e-10, atol=1e-12):
                return [Finding(False, what, message + Text("；", "; ") + name)]
        if step == 1:
            message += Text(
                "；第一步之前 v 是 0，所以第一步 v = g，w <- w - lr * g",
                "; v is 0 before the first step, so the first step has v = g and w <- w - lr * g",
            )
        return [Finding(False, what, message)]
    return [
        right(
            what,
            f"每一步都与 torch.optim.SGD(lr={LR}, momentum={MU}) 相同",
            f"every step equals torch.optim.SGD(lr={LR}, momentum={MU})'s",
        )
    ]
