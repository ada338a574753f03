"""The lesson's multilayer perceptron, built from config."""

from collections.abc import Sequence

from torch import Tensor, nn

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


class MLP(nn.Module):
    """Flatten, then per hidden layer Linear -> [BatchNorm] -> activation -> [Dropout], then Linear to logits."""

    def __init__(
        self,
        input_dim: int = 784,
        hidden_dims: Sequence[int] = (512, 256),
        num_classes: int = 10,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise InputError(f"model.activation={activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if not hidden_dims or any(int(d) < 1 for d in hidden_dims):
            raise InputError(f"model.hidden_dims={list(hidden_dims)}: give one or more positive layer sizes")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"model.dropout={dropout}: must be in [0, 1)")
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Flatten()]
        width = input_dim
        for hidden in hidden_dims:
            layers.append(nn.Linear(width, hidden))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
