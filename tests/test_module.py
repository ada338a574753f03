import pytest
import torch
from torch import nn

from mlplab.errors import InputError
from mlplab.losses import SoftmaxMSELoss
from mlplab.model import ACTIVATIONS, MLP
from mlplab.module import Classifier

MODEL = {"_target_": "mlplab.model.MLP", "hidden_dims": [3, 2], "batch_norm": True}
LOSS = {"_target_": "torch.nn.CrossEntropyLoss"}
OPTIMIZER = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}


def test_penalties_follow_their_formula_over_linear_weights_only():
    module = Classifier(model=MODEL, loss=LOSS, optimizer=OPTIMIZER, l1=0.5, l2=0.25)
    linears = [m for m in module.net.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for value, layer in zip((1.0, -2.0, 3.0), linears, strict=True):
            layer.weight.fill_(value)
            layer.bias.fill_(100.0)  # biases and batch-norm parameters must not count
        for bn in (m for m in module.net.modules() if isinstance(m, nn.BatchNorm1d)):
            bn.weight.fill_(100.0)
    sizes = [784 * 3, 3 * 2, 2 * 10]
    penalties = module.penalties()
    assert penalties["l1_penalty"].item() == pytest.approx(0.5 * (1 * sizes[0] + 2 * sizes[1] + 3 * sizes[2]))
    assert penalties["l2_penalty"].item() == pytest.approx(0.25 * (1 * sizes[0] + 4 * sizes[1] + 9 * sizes[2]))


def test_penalties_add_to_the_training_loss():
    torch.manual_seed(0)
    batch = (torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))
    plain = Classifier(model=MODEL, loss=LOSS, optimizer=OPTIMIZER)
    penalized = Classifier(model=MODEL, loss=LOSS, optimizer=OPTIMIZER, l1=1e-3, l2=1e-2)
    penalized.load_state_dict(plain.state_dict())
    for module in (plain, penalized):
        module.log = lambda *args, **kwargs: None  # no trainer attached
    penalty = sum(penalized.penalties().values())
    assert penalized.training_step(batch, 0).item() == pytest.approx(
        plain.training_step(batch, 0).item() + penalty.item()
    )


def test_softmax_mse_is_the_squared_distance_to_the_one_hot_target():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([0, 2])
    p = logits.softmax(dim=1)
    expected = ((p[0] - torch.tensor([1.0, 0, 0])) ** 2).sum() + ((p[1] - torch.tensor([0, 0, 1.0])) ** 2).sum()
    assert SoftmaxMSELoss()(logits, target).item() == pytest.approx(expected.item() / 2)


def test_mlp_layers_appear_only_when_chosen():
    plain = [type(m) for m in MLP(hidden_dims=[5]).layers]
    assert plain == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]
    full = [type(m) for m in MLP(hidden_dims=[5], activation="tanh", dropout=0.5, batch_norm=True).layers]
    assert full == [nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.Tanh, nn.Dropout, nn.Linear]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_builds(activation):
    assert MLP(hidden_dims=[4], activation=activation)(torch.zeros(2, 784)).shape == (2, 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"activation": "swish"}, r"model.activation='swish': choose one of relu, leaky_relu, elu, gelu"),
        ({"hidden_dims": []}, r"model.hidden_dims=\[\]: give one or more positive layer sizes"),
        ({"hidden_dims": [8, 0]}, r"model.hidden_dims=\[8, 0\]: give one or more positive layer sizes"),
        ({"dropout": 1.0}, r"model.dropout=1.0: must be in \[0, 1\)"),
    ],
)
def test_bad_model_values_are_named(kwargs, message):
    with pytest.raises(InputError, match=message):
        MLP(**kwargs)
