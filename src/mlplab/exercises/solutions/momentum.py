"""Worked solution of exercise momentum: torch.optim.SGD's momentum, as src/mlplab/scratch/optim.py's Momentum."""


def momentum_step(w, g, v, lr, momentum):
    # The velocity remembers past gradients, each older one weighted by one more factor of momentum: along a
    # direction where the gradients agree, the steps grow up to 1 / (1 - momentum) times (10x at 0.9); where they
    # alternate, they cancel. v starts at 0, so the first step is plain gradient descent (v = g).
    v = momentum * v + g
    # torch puts lr outside v. Writing v <- momentum v + lr g, w <- w - v gives the same weights while lr stays
    # constant; v <- momentum v + (1 - momentum) g, an average, would make every step 1 - momentum times smaller.
    return w - lr * v, v
