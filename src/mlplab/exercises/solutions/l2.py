"""Worked solution of exercise l2: the lab's L2 penalty (regularization=l2) and its gradient."""

import numpy as np


def l2_penalty(weights, lam):
    # The lab's convention (src/mlplab/penalties.py's L2): lam * sum w^2, with no 1/2. torch's weight_decay=wd
    # adds wd * w to the gradient, the gradient of wd/2 * sum w^2: so regularization=l2 with strength lam is
    # weight_decay = 2 lam for SGD.
    return float(lam * sum(np.sum(w**2) for w in weights))


def l2_gradient(weights, lam):
    # d/dw of lam * w^2 is 2 lam w, element by element: each weight is pulled towards 0 in proportion to its size
    # (hence "weight decay"). Biases are not in `weights`: shifting a unit's threshold does not make it overfit.
    return [2 * lam * w for w in weights]
