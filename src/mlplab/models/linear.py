"""The mapping with no hidden layer: one linear layer from the 784 pixels to the 10 logits (multinomial logistic
regression). What the lesson's hidden layers add is measured against it."""

from torch import Tensor, nn

from mlplab.models.network import INPUT_DIM, Network, check_dropout, refuse


class Linear(Network):
    """Flatten, [Dropout of pixels], Linear to logits."""

    RULES = (*Network.RULES, INPUT_DIM)

    def __init__(
        self, input_dim: int = 784, num_classes: int = 10, dropout: float = 0.0, batch_norm: bool = False
    ) -> None:
        super().__init__()
        check_dropout(dropout)
        if batch_norm:
            raise refuse("linear", "batch_norm", "which has no hidden layer to normalize (choose model=mlp or cnn)")
        self.num_classes = num_classes
        self.layers = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(input_dim, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    def first_layer_images(self) -> Tensor | None:
        # Each class's 784 weights as an image: the template that the class's score matches the digit against.
        weight = self.layers[2].weight
        return weight.reshape(-1, 28, 28) if weight.shape[1] == 28 * 28 else None
