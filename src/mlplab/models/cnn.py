"""A convolutional network (卷积神经网络, CNN, named in the lesson's §2.2), shaped like LeCun's LeNet-5: two
convolution + pooling stages, then dense layers."""

from collections.abc import Sequence

from torch import Tensor, nn

from mlplab.config.rules import Rule, integer, list_of, within
from mlplab.errors import InputError
from mlplab.models.network import ACTIVATION, HIDDEN_DIMS, Network, check_dropout, check_sizes, dense_layers
from mlplab.models.network import activation as make_activation

SIDE = 28  # MNIST's images are 28 x 28


class CNN(Network):
    """Per stage Conv2d (same padding) -> [BatchNorm2d] -> activation -> 2 x 2 max pooling; then flatten and the
    dense layers of an MLP (Linear -> [BatchNorm1d] -> activation -> [Dropout]), then Linear to logits."""

    RULES = (
        *Network.RULES,
        HIDDEN_DIMS,
        ACTIVATION,
        Rule("channels", *list_of(within("[1, inf)", "integer")), refused=[6, 0]),
        Rule(
            "kernel_size",
            lambda value: integer(value) and value >= 1 and value % 2 == 1,
            "an odd integer >= 1 (3, 5, 7): the padding keeps the side only for an odd one",
            refused=4,
        ),
    )

    def __init__(
        self,
        channels: Sequence[int] = (6, 16),
        kernel_size: int = 5,
        hidden_dims: Sequence[int] = (120, 84),
        num_classes: int = 10,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        channels = check_sizes("channels", channels, "channel counts")
        hidden_dims = check_sizes("hidden_dims", hidden_dims)
        check_dropout(dropout)
        if not (isinstance(kernel_size, int) and kernel_size >= 1 and kernel_size % 2 == 1):
            raise InputError(f"model.kernel_size={kernel_size}: must be an odd integer >= 1 (3, 5, 7)")
        side = SIDE >> len(channels)  # each stage's pooling halves the side
        if side < 1:
            raise InputError(f"model.channels={channels}: {len(channels)} pooling stages shrink 28 px to nothing")
        self.num_classes = num_classes
        stages: list[nn.Module] = []
        width = 1
        for count in channels:
            stages.append(nn.Conv2d(width, count, kernel_size, padding=kernel_size // 2))
            if batch_norm:
                stages.append(nn.BatchNorm2d(count))
            stages += [make_activation(activation), nn.MaxPool2d(2)]
            width = count
        self.features = nn.Sequential(*stages)
        dense = dense_layers(width * side * side, hidden_dims, activation, dropout, batch_norm)
        self.classifier = nn.Sequential(nn.Flatten(), *dense, nn.Linear(hidden_dims[-1], num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))

    def first_layer_images(self) -> Tensor:
        # The first convolution's filters: each one the small patch of ink it looks for, wherever it lies.
        return self.features[0].weight[:, 0]
