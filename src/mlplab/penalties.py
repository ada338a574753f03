"""Penalties added to the loss, over the network's weights (mlplab.models.network.Network.weights: no biases, no
normalization). Each is one class here and one config in conf/regularization/; `regularization=[l2,elastic_net]`
adds both, each logged as train/<its name in the group>_penalty.

A new penalty: a Penalty subclass with its `term(weight) -> Tensor`, its `RULES` for its keys' ranges (checked
before anything is built), and conf/regularization/<name>.yaml with `<name>: {_target_: ..., strength: ...}`.
"""

from collections.abc import Sequence

from torch import Tensor

from mlplab.config.rules import Rule, within


class Penalty:
    """strength * term(weights), summed over the weight tensors."""

    RULES = (Rule("strength", *within("[0, inf)"), refused=-1e-5),)

    def __init__(self, strength: float) -> None:
        self.strength = strength

    def __call__(self, weights: Sequence[Tensor]) -> Tensor:
        return self.strength * sum(self.term(w) for w in weights)

    def term(self, weight: Tensor) -> Tensor:
        raise NotImplementedError


class L1(Penalty):
    """strength * sum |w|: pushes weights to exactly 0 (the lesson's §3.4 names L1/L2正则化)."""

    def term(self, weight: Tensor) -> Tensor:
        return weight.abs().sum()


class L2(Penalty):
    """strength * sum w^2: keeps weights small (the lesson's §3.4 names L1/L2正则化; weight decay's penalty)."""

    def term(self, weight: Tensor) -> Tensor:
        return weight.pow(2).sum()


class ElasticNet(Penalty):
    """strength * sum (l1_ratio |w| + (1 - l1_ratio) / 2 w^2): L1 and L2 mixed, as scikit-learn's ElasticNet.

    Ours (the lesson names L1 and L2 only): l1_ratio 1 is L1, 0 is half of L2."""

    RULES = (*Penalty.RULES, Rule("l1_ratio", *within("[0, 1]"), refused=1.5))

    def __init__(self, strength: float, l1_ratio: float = 0.5) -> None:
        super().__init__(strength)
        self.l1_ratio = l1_ratio

    def term(self, weight: Tensor) -> Tensor:
        return self.l1_ratio * weight.abs().sum() + (1 - self.l1_ratio) / 2 * weight.pow(2).sum()
