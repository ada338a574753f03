"""The lesson's four optimizers in NumPy, with exactly the update formulas of their torch.optim counterparts.

Each step updates every parameter in place: w <- w - update(g), where g is its gradient and update() may keep
per-parameter state (a velocity, running averages). The defaults are torch.optim's (torch 2.x), and the formulas
are the ones in the torch.optim documentation with weight decay, dampening, Nesterov, centering and AMSGrad off.
"""

import numpy as np


class Optimizer:
    """Applies update() to every parameter; t counts the steps taken so far, this one included."""

    def __init__(self, lr: float) -> None:
        self.lr = lr
        self.t = 0
        self.state: dict[str, np.ndarray | tuple[np.ndarray, np.ndarray]] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """w <- w - update(g) for every parameter, in place."""
        self.t += 1
        for name, g in grads.items():
            params[name] -= self.update(name, g)

    def update(self, name: str, g: np.ndarray) -> np.ndarray:
        """The amount to subtract from parameter `name`, whose gradient is g; may update self.state[name]."""
        raise NotImplementedError


class GradientDescent(Optimizer):
    """w <- w - lr g  (torch.optim.SGD)."""

    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__(lr)

    def update(self, name: str, g: np.ndarray) -> np.ndarray:
        return self.lr * g


class Momentum(Optimizer):
    """v <- mu v + g;  w <- w - lr v  (torch.optim.SGD with momentum; v starts at 0, so the first v is g).

    Written v <- mu v + lr g;  w <- w - v instead, it is the same trajectory as long as lr stays constant.
    """

    def __init__(self, lr: float = 1e-3, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = momentum

    def update(self, name: str, g: np.ndarray) -> np.ndarray:
        v = self.state[name] = self.momentum * self.state.get(name, 0) + g
        return self.lr * v


class RMSProp(Optimizer):
    """v <- alpha v + (1 - alpha) g^2;  w <- w - lr g / (sqrt(v) + eps)  (torch.optim.RMSprop; v starts at 0)."""

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.alpha, self.eps = alpha, eps

    def update(self, name: str, g: np.ndarray) -> np.ndarray:
        v = self.state[name] = self.alpha * self.state.get(name, 0) + (1 - self.alpha) * g**2
        return self.lr * g / (np.sqrt(v) + self.eps)


class Adam(Optimizer):
    """torch.optim.Adam: running means m of g and v of g^2, each divided by (1 - beta^t) to undo their start at 0.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  w <- w - lr m_hat / (sqrt(v_hat) + eps), with
    m_hat = m / (1 - b1^t) and v_hat = v / (1 - b2^t): eps is added after the square root.
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps

    def update(self, name: str, g: np.ndarray) -> np.ndarray:
        m, v = self.state.get(name, (0, 0))
        m = self.beta1 * m + (1 - self.beta1) * g
        v = self.beta2 * v + (1 - self.beta2) * g**2
        self.state[name] = (m, v)
        m_hat = m / (1 - self.beta1**self.t)
        v_hat = v / (1 - self.beta2**self.t)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GradientDescent,
    "momentum": Momentum,
    "rmsprop": RMSProp,
    "adam": Adam,
}
