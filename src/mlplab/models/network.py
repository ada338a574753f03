"""What the lab asks of a network, with defaults that fit most networks; a model overrides only its exceptions.

Every network takes images (N, 1, 28, 28), normalized as mlplab.data gives them, and returns (N, num_classes)
logits. The penalties, the dashboards and the checks ask it through the hooks below instead of knowing its layers,
as timm's models declare their exceptions through optional hooks with defaults.

The regularization group's convention: `regularization=dropout` and `regularization=batch_norm` set the model
arguments `dropout` and `batch_norm`, so every network takes both (a network for which one makes no sense refuses
it with `refuse`); the penalties (mlplab.penalties) are applied by the module, over `weights()`.
"""

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from mlplab.config.rules import FLAG, Rule, integer, list_of, one_of, within
from mlplab.errors import InputError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


# The ranges of the arguments that networks share, checked before anything is built (mlplab.config.checks); the
# networks check their sizes, dropout, activation and cell too, for code that builds them without a config.
INPUT_DIM = Rule(
    "input_dim", lambda value: integer(value) and value == 28 * 28, "784, the 28 x 28 pixels of an image", 28
)
HIDDEN_DIMS = Rule("hidden_dims", *list_of(within("[1, inf)", "integer")), refused=[512, "abc"])
ACTIVATION = Rule("activation", *one_of(*ACTIVATIONS), refused="swish")


class Network(nn.Module):
    """A classifier of 28 x 28 digit images. Subclasses set `num_classes` and build their layers, and add the ranges
    of their own arguments to RULES."""

    num_classes: int
    RULES: tuple[Rule, ...] = (
        Rule("num_classes", lambda value: integer(value) and value == 10, "10, the digits 0 to 9", refused=9),
        Rule("dropout", *within("[0, 1)"), refused=1.0),  # 1 drops everything
        Rule("batch_norm", *FLAG, refused="yes"),
    )

    def weights(self) -> dict[str, Tensor]:
        """The weight tensors by parameter name: what the penalties cover and TensorBoard's histograms show.

        Default: every parameter of two or more dimensions (nanoGPT's rule for weight decay), which covers the
        weights of Linear, convolution and recurrent layers alike and leaves out biases and normalization.
        """
        return {name: parameter for name, parameter in self.named_parameters() if parameter.ndim >= 2}

    def first_layer_images(self) -> Tensor | None:
        """What the first layer's units look for, as (count, height, width) weight images for TensorBoard's
        `weights/first_layer` (mid-gray 0, white excites, black inhibits); None: nothing to draw."""
        return None

    def unit_layers(self) -> list[nn.Module]:
        """Modules whose output is a hidden layer's activity with its units (or a convolution's channels) on dim 1:
        `val/dead_units/<n>` is the fraction of them that never fire on the validation set. Default: every ReLU."""
        return [module for module in self.modules() if isinstance(module, nn.ReLU)]


def activation(name: str) -> nn.Module:
    """A fresh activation layer for `model.activation`."""
    if name not in ACTIVATIONS:
        raise InputError(f"model.activation={name!r}: choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def check_sizes(key: str, sizes: Sequence[Any], what: str = "layer sizes") -> list[int]:
    """`model.<key>` as a list of positive integers, or InputError naming it."""
    values = list(sizes) if isinstance(sizes, Sequence) and not isinstance(sizes, str) else [sizes]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise InputError(f"model.{key}={values}: give one or more positive {what} (integers)")
    return values


def check_dropout(dropout: float) -> None:
    if not (isinstance(dropout, int | float) and 0.0 <= dropout < 1.0):
        raise InputError(f"model.dropout={dropout}: must be in [0, 1)")


def refuse(model: str, option: str, why: str) -> InputError:
    """The error for a regularization option that makes no sense for this model, naming both."""
    return InputError(f"regularization={option} (model.{option}): not for model={model}, {why}")


def dense_layers(width: int, hidden_dims: Sequence[int], act: str, dropout: float, batch_norm: bool) -> list[nn.Module]:
    """Per hidden layer Linear -> [BatchNorm1d] -> activation -> [Dropout]; returns the layers (the last width is
    the last hidden size)."""
    layers: list[nn.Module] = []
    for hidden in hidden_dims:
        layers.append(nn.Linear(width, hidden))
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(activation(act))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    return layers
