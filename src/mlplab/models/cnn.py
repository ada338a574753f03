"""A convolutional network (卷积神经网络, CNN, named in the lesson's §2.2), shaped like LeCun's LeNet-5: two
convolution + pooling stages, then dense layers (experiment=speedrun: the published fast recipe's shape)."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlplab.config.rules import FLAG, Rule, integer, list_of, one_of, within
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
            lambda value: all(integer(k) and k >= 1 and k % 2 == 1 for k in _listed(value)) and _listed(value) != [],
            "an odd integer >= 1 (3, 5, 7), or a list of them, one per stage: same padding keeps the side only for "
            "an odd one",
            refused=4,
        ),
        Rule("padding", *one_of("same", "valid"), refused="full"),
        Rule("channels_last", *FLAG, refused="yes"),
    )

    def __init__(
        self,
        channels: Sequence[int] = (6, 16),
        kernel_size: int | Sequence[int] = 5,
        hidden_dims: Sequence[int] = (120, 84),
        num_classes: int = 10,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        padding: str = "same",
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        channels = check_sizes("channels", channels, "channel counts")
        hidden_dims = check_sizes("hidden_dims", hidden_dims)
        check_dropout(dropout)
        kernels = [kernel_size] * len(channels) if isinstance(kernel_size, int) else list(kernel_size)
        if len(kernels) != len(channels) or not all(isinstance(k, int) and k >= 1 and k % 2 == 1 for k in kernels):
            raise InputError(
                f"model.kernel_size={kernel_size}: must be an odd integer >= 1 (3, 5, 7) or a list of them, one per "
                f"stage of model.channels={channels}"
            )
        if padding not in ("same", "valid"):
            raise InputError(f"model.padding={padding}: must be same or valid")
        self.num_classes = num_classes
        stages: list[nn.Module] = []
        width, side = 1, SIDE
        for count, kernel in zip(channels, kernels, strict=True):
            stages.append(nn.Conv2d(width, count, kernel, padding=kernel // 2 if padding == "same" else 0))
            if batch_norm:
                stages.append(nn.BatchNorm2d(count))
            stages += [make_activation(activation), nn.MaxPool2d(2)]
            side = (side if padding == "same" else side - kernel + 1) // 2  # valid convolutions trim the edges
            width = count
            if side < 1:
                raise InputError(f"model.channels={channels}: {len(channels)} pooling stages shrink 28 px to nothing")
        self.features = nn.Sequential(*stages)
        dense = dense_layers(width * side * side, hidden_dims, activation, dropout, batch_norm)
        self.classifier = nn.Sequential(nn.Flatten(), *dense, nn.Linear(hidden_dims[-1], num_classes))
        # Activations stored pixel by pixel with their channels together (NHWC): oneDNN's convolutions run faster
        # on them than on channel planes (1.8x per training step at batch 64 on 2 CPU cores, README's Performance).
        # The values are the same up to the convolutions' rounding; .to(device) keeps the layout.
        self.channels_last = channels_last
        if channels_last:
            self.features.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.classifier(self.features(x))

    def first_layer_images(self) -> Tensor:
        # The first convolution's filters: each one the small patch of ink it looks for, wherever it lies.
        return self.features[0].weight[:, 0]


def _listed(value: object) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]
