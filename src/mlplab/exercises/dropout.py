"""Exercise dropout: inverted dropout (§3.4 names Dropout), checked by its statistics over many units."""

import math

import numpy as np

from mlplab.exercises.checking import Finding, Stop, Text, as_array, call, right, same, wrong

ID = "dropout"
SECTION = "§3.4"
TITLE = Text("Dropout 丢弃法", "Dropout")
TEMPLATE = '''\
"""练习 dropout · Dropout（课程 §3.4）/ Exercise dropout · Dropout (the lesson's §3.4)

课程 §3.4 只提到了 Dropout 的名字。这里写 inverted dropout（PyTorch 的 nn.Dropout 也是这样）：
训练时每个单元以概率 p 置 0，留下的单元乘以 1/(1 - p)，这样均值不变，测试时什么都不用改。
The lesson's §3.4 only names Dropout. Write inverted dropout (as PyTorch's nn.Dropout does): while training, each
unit is set to 0 with probability p and the units kept are multiplied by 1/(1 - p), so that the mean stays the
same and testing needs no change.

检查 / check:  python -m mlplab.exercises check dropout
"""

import numpy as np


def dropout(a, p, rng, training):
    """a: 一层的输出（任意形状）/ a layer's output (any shape);  p: 丢弃的概率 / the probability to drop a unit;
    rng: np.random.Generator，用它抽掩码（如 rng.random(a.shape)）/ draw the mask with it (rng.random(a.shape));
    training: False 时原样返回 a / when False, return a unchanged.

    返回与 a 同形的新数组，不要改动 a / return a new array of a's shape; leave a unchanged.
    """
    raise NotImplementedError("Dropout 还没写 / dropout is not written yet")
'''

P = 0.3
SIGMAS = 5  # a right answer fails a 5-sigma test about once in 1.7 million seeds: never, for our fixed ones


def check(module: object) -> list[Finding]:
    a = np.random.default_rng(34).uniform(0.5, 1.5, (200, 50))  # no zeros: a 0 in the output is a dropped unit

    def run(x: np.ndarray, p: float, seed: int, training: bool) -> np.ndarray:
        out = as_array(call(module, "dropout", x, p, np.random.default_rng(seed), training))
        if out is None or out.shape != x.shape:
            raise Stop(
                wrong(
                    "dropout",
                    f"应返回与 a 同形 {x.shape} 的数组",
                    f"should return an array of a's shape {x.shape}",
                )
            )
        return out

    findings = []
    saved = a.copy()
    out = run(a, 0.3, 0, False)
    findings.append(
        right("training=False", "原样返回 a", "returns a unchanged")
        if np.array_equal(out, a)
        else wrong(
            "training=False",
            "应原样返回 a：测试时不丢弃，也不缩放（inverted dropout 在训练时就缩放好了）",
            "should return a unchanged: no dropping and no scaling at test time (inverted dropout scales while "
            "training)",
        )
    )
    out = run(a, 0.0, 0, True)
    findings.append(
        right("p=0", "什么都不丢，等于 a", "drops nothing: equals a")
        if np.allclose(out, a, rtol=1e-12, atol=0)
        else wrong("p=0", "p = 0 时应等于 a", "with p = 0 it should equal a")
    )
    out = run(a, P, 0, True)
    if not np.array_equal(a, saved):
        findings.append(
            wrong("a", "被就地改动了：返回新数组，不要改 a", "was changed in place: return a new array, leave a alone")
        )
    findings += [scale(a, out), fraction(out), mean(a, out), reproducible(run, a)]
    return findings


def scale(a: np.ndarray, out: np.ndarray) -> Finding:
    what = Text("缩放", "the scale")
    kept = out != 0
    if not kept.any():
        return wrong(what, "所有单元都被丢掉了", "every unit was dropped")
    ratios = out[kept] / a[kept]
    want = 1 / (1 - P)
    if np.allclose(ratios, want, rtol=1e-9):
        return right(what, f"留下的单元都乘了 1/(1 - p) = {want:.4f}", f"the units kept are all scaled by {want:.4f}")
    if np.allclose(ratios, 1):
        hint = Text(
            "没有缩放：inverted dropout 要把留下的单元乘以 1/(1 - p)，均值才不变，测试时才不用改",
            "they are not scaled: inverted dropout multiplies them by 1/(1 - p), so that the mean stays and testing "
            "needs no change",
        )
    elif np.allclose(ratios, 1 - P):
        hint = Text("乘的是 1 - p：应除以 1 - p", "multiplied by 1 - p: divide by 1 - p instead")
    else:
        hint = Text("每个留下的单元都应乘同一个数", "every unit kept should be multiplied by the same number")
    low, high = ratios.min(), ratios.max()
    got = same(f"{low:.4f}") if np.isclose(low, high) else Text(f"{low:.4f} 到 {high:.4f}", f"{low:.4f} to {high:.4f}")
    expected = Text(
        f"留下的单元应乘 1/(1 - p) = {want:.4f}（p = {P}），得到的是乘 ",
        f"the units kept should be scaled by 1/(1 - p) = {want:.4f} (p = {P}), got ",
    )
    return Finding(False, what, expected + got + Text("：", ": ") + hint)


def fraction(out: np.ndarray) -> Finding:
    """The share of zeros, within SIGMAS binomial standard deviations of p."""
    what = Text("丢弃的比例", "the fraction dropped")
    dropped, n = float(np.mean(out == 0)), out.size
    tolerance = SIGMAS * math.sqrt(P * (1 - P) / n)
    if abs(dropped - P) <= tolerance:
        return right(
            what,
            f"{dropped:.1%}，p = {P:.0%}（{n} 个单元，容差 ±{tolerance:.1%}）",
            f"{dropped:.1%}, p = {P:.0%} ({n} units, tolerance ±{tolerance:.1%})",
        )
    message = Text(
        f"丢掉了 {dropped:.1%}，应接近 p = {P:.0%}（{n} 个单元，容差 ±{tolerance:.1%}）",
        f"{dropped:.1%} dropped, should be near p = {P:.0%} ({n} units, tolerance ±{tolerance:.1%})",
    )
    if abs(dropped - (1 - P)) <= tolerance:
        message += Text("：p 是丢弃的概率，不是保留的概率", ": p is the probability to drop a unit, not to keep it")
    return Finding(False, what, message)


def mean(a: np.ndarray, out: np.ndarray) -> Finding:
    """Each unit's expected output is its input; the mean over n units strays by about sqrt(sum a^2 p/(1-p)) / n."""
    what = Text("均值", "the mean")
    tolerance = SIGMAS * math.sqrt(float(np.sum(a**2)) * P / (1 - P)) / a.size
    if abs(out.mean() - a.mean()) <= tolerance:
        return right(
            what,
            f"{out.mean():.4f}，与 a 的 {a.mean():.4f} 相符（容差 ±{tolerance:.4f}）",
            f"{out.mean():.4f}, as a's {a.mean():.4f} (tolerance ±{tolerance:.4f})",
        )
    return wrong(
        what,
        f"{out.mean():.4f}，应与 a 的均值 {a.mean():.4f} 相符（容差 ±{tolerance:.4f}）",
        f"{out.mean():.4f}, should keep a's mean {a.mean():.4f} (tolerance ±{tolerance:.4f})",
    )


def reproducible(run, a: np.ndarray) -> Finding:
    """The mask comes from the rng passed in: the same seed gives the same mask, another seed another."""
    same_seed = np.array_equal(run(a, P, 5, True), run(a, P, 5, True))
    other_seed = not np.array_equal(run(a, P, 5, True), run(a, P, 6, True))
    if same_seed and other_seed:
        return right(
            "rng", "掩码来自传进来的 rng：同一个种子，同一个掩码", "the mask comes from rng: same seed, same mask"
        )
    return wrong(
        "rng",
        "掩码要用传进来的 rng 抽（rng.random(a.shape)），不要用 np.random 的全局状态：那样同一个种子得不到同一个结果",
        "draw the mask with the rng passed in (rng.random(a.shape)), not np.random's global state: otherwise the "
        "same seed does not give the same result",
    )
