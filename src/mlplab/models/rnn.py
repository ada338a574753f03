"""A recurrent network (循环神经网络, RNN, named in the lesson's §2.2): the image read row by row, top to bottom, as a
sequence of 28 vectors of 28 pixels; the last state of the last recurrent layer goes to a linear layer."""

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn

from mlplab.config.rules import Rule, one_of
from mlplab.errors import InputError
from mlplab.models.network import HIDDEN_DIMS, Network, check_dropout, check_sizes, refuse

CELLS: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}
GATES = {"gru": ("reset", "update", "new"), "lstm": ("input", "forget", "cell", "output")}  # torch's row order
ROW = 28  # pixels per image row: the input of each time step


class RNN(Network):
    """One recurrent layer (GRU or LSTM) per entry of hidden_dims, [Dropout] after each, then Linear to logits."""

    RULES = (*Network.RULES, HIDDEN_DIMS, Rule("cell", *one_of(*CELLS), refused="rnn"))

    def __init__(
        self,
        cell: str = "gru",
        hidden_dims: Sequence[int] = (128,),
        num_classes: int = 10,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise InputError(f"model.cell={cell!r}: choose one of {', '.join(CELLS)}")
        hidden_dims = check_sizes("hidden_dims", hidden_dims)
        check_dropout(dropout)
        if batch_norm:
            # Statistics per batch would mix the 28 time steps' different inputs; recurrent networks use none.
            raise refuse("rnn", "batch_norm", "whose recurrent layers have no batch norm (choose model=mlp or cnn)")
        self.num_classes, self.cell = num_classes, cell
        widths = [ROW, *hidden_dims]
        self.recurrent = nn.ModuleList(CELLS[cell](w_in, w_out, batch_first=True) for w_in, w_out in pairwise(widths))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dims[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        sequence = x.flatten(1, 2)  # (N, 1, 28, 28) -> (N, 28 rows, 28 pixels)
        for layer in self.recurrent:
            sequence = self.dropout(layer(sequence)[0])
        return self.head(sequence[:, -1])

    def first_layer_images(self) -> Tensor:
        # The first layer's input weights: per gate, one image whose row u is the 28-pixel image row that unit u
        # of that gate weighs at every step (its recurrent weights see states, not pixels).
        weights = self.recurrent[0].weight_ih_l0
        return weights.reshape(len(GATES[self.cell]), -1, ROW)
