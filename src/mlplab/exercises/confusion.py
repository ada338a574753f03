"""Exercise confusion: a confusion matrix (rows = true class), checked against torchmetrics."""

import numpy as np

from mlplab.exercises.checking import Finding, Text, as_array, call, index_text, right, wrong

ID = "confusion"
SECTION = "§5.5"
TITLE = Text("混淆矩阵", "The confusion matrix")
TEMPLATE = '''\
"""练习 confusion · 混淆矩阵（课程 §5.5）/ Exercise confusion · The confusion matrix (the lesson's §5.5)

课程 §5.5 只算了测试集上的准确率。混淆矩阵还说出错在哪里：哪个数字被认成了哪个
（本项目在 TensorBoard 里画的 val/confusion_matrix 就是它）。
The lesson's §5.5 computes the test accuracy only. A confusion matrix also says where the mistakes are: which
digit is taken for which (the lab draws it in TensorBoard as val/confusion_matrix).

检查 / check:  python -m mlplab.exercises check confusion
"""

import numpy as np


def confusion_matrix(predictions, targets, classes):
    """predictions, targets: 整数数组 (N,)，取值 0 .. classes-1 / integer arrays (N,) of classes 0 .. classes-1.

    返回 (classes, classes) 的整数数组，[i, j] 是真实类别为 i、被预测成 j 的样本数（行 = 真实类别，列 = 预测）。
    Return a (classes, classes) integer array whose [i, j] counts the samples of true class i predicted as j
    (rows = the true class, columns = the prediction).
    """
    raise NotImplementedError("混淆矩阵还没写 / the confusion matrix is not written yet")
'''

CLASSES = 5


def reference(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    import torch  # here, not at the top: `list` and `start` need not wait for torch
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    matrix = multiclass_confusion_matrix(torch.from_numpy(predictions), torch.from_numpy(targets), CLASSES)
    return matrix.numpy()


def check(module: object) -> list[Finding]:
    rng = np.random.default_rng(55)
    targets = rng.integers(0, CLASSES, 200)
    predictions = np.where(rng.random(200) < 0.6, targets, rng.integers(0, CLASSES, 200))  # mostly right
    # Class 3 is never predicted, and class 4 neither occurs nor is predicted: their rows and columns of zeros are
    # still there (a matrix sized by the labels present would stop at 4 x 4).
    edge_targets = np.array([0, 1, 2, 3, 3, 1, 0, 2])
    edge_predictions = np.array([0, 2, 2, 1, 0, 1, 0, 2])
    return [
        compare(module, Text("随机数据", "random data"), predictions, targets),
        compare(module, Text("有类别从没被预测过", "a class never predicted"), edge_predictions, edge_targets),
    ]


def compare(module: object, what: Text, predictions: np.ndarray, targets: np.ndarray) -> Finding:
    expected = reference(predictions, targets)
    got = as_array(call(module, "confusion_matrix", predictions.copy(), targets.copy(), CLASSES))
    against = "torchmetrics multiclass_confusion_matrix"
    if got is None or got.shape != expected.shape:
        shape = "?" if got is None else str(got.shape)
        return wrong(
            what,
            f"形状应为 {expected.shape}，得到 {shape}：类别数是 classes = {CLASSES}，即使某个类别从没出现或从没被预测，"
            "它的那一行、那一列也要在（全是 0）",
            f"its shape should be {expected.shape}, got {shape}: there are classes = {CLASSES} classes, and a class "
            "never seen or never predicted keeps its row and column (of zeros)",
        )
    if np.array_equal(got, expected):
        return right(what, f"与 {against} 相同", f"equals {against}'s")
    index = tuple(int(i) for i in np.argwhere(got != expected)[0])
    message = Text(
        f"与 {against} 不同：{index_text(index)} 应为 {expected[index]}，得到 {got[index]:g}",
        f"differs from {against}: {index_text(index)} should be {expected[index]}, got {got[index]:g}",
    )
    if np.array_equal(got.T, expected):
        message += Text(
            "：整个矩阵转置了，行应是真实类别，列是预测的类别",
            ": the matrix is transposed; rows should be the true class, columns the prediction",
        )
    return Finding(False, what, message)
