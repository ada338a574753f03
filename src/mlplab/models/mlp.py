"""The lesson's fully connected network (全连接神经网络, §2.2 and §5.2): 784-512-256-10 with ReLU by default."""

from collections.abc import Sequence

from torch import Tensor, nn

from mlplab.models.network import ACTIVATION, HIDDEN_DIMS, INPUT_DIM, Network, check_dropout, check_sizes, dense_layers


class MLP(Network):
    """Flatten, then per hidden layer Linear -> [BatchNorm] -> activation -> [Dropout], then Linear to logits."""

    RULES = (*Network.RULES, INPUT_DIM, HIDDEN_DIMS, ACTIVATION)

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
        hidden_dims = check_sizes("hidden_dims", hidden_dims)
        check_dropout(dropout)
        self.num_classes = num_classes
        body = dense_layers(input_dim, hidden_dims, activation, dropout, batch_norm)
        self.layers = nn.Sequential(nn.Flatten(), *body, nn.Linear(hidden_dims[-1], num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    def first_layer_images(self) -> Tensor | None:
        # Each first-layer unit weighs every pixel: its 784 weights drawn as the 28 x 28 image it responds to.
        first = self.layers[1].weight
        return first.reshape(-1, 28, 28) if first.shape[1] == 28 * 28 else None
