import pytest
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import nn

from mlplab.data import TensorLoader
from mlplab.engine.execution import ExecutedDataModule, Plan
from mlplab.errors import InputError
from mlplab.losses import SoftmaxMSELoss
from mlplab.models.mlp import MLP
from mlplab.models.network import ACTIVATIONS
from mlplab.module import Classifier

MODEL = {"_target_": "mlplab.models.mlp.MLP", "hidden_dims": [3, 2], "batch_norm": True}
LOSS = {"_target_": "torch.nn.CrossEntropyLoss"}
OPTIMIZER = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}


L1 = {"_target_": "mlplab.penalties.L1", "strength": 0.5}
L2 = {"_target_": "mlplab.penalties.L2", "strength": 0.25}


def penalty_terms(module: Classifier) -> dict[str, float]:
    weights = list(module.net.weights().values())
    return {name: penalty(weights).item() for name, penalty in module.penalties.items()}


@pytest.mark.parametrize(
    "arguments",
    [{"penalties": {"l1": L1, "l2": L2}}, {"l1": 0.5, "l2": 0.25}],  # the 0.1.0 checkpoints' form: the same penalties
    ids=["configs", "v0.1.0 strengths"],
)
def test_penalties_follow_their_formula_over_linear_weights_only(arguments):
    module = Classifier(model=MODEL, loss=LOSS, optimizer=OPTIMIZER, **arguments)
    linears = [m for m in module.net.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for value, layer in zip((1.0, -2.0, 3.0), linears, strict=True):
            layer.weight.fill_(value)
            layer.bias.fill_(100.0)  # biases and batch-norm parameters must not count
        for bn in (m for m in module.net.modules() if isinstance(m, nn.BatchNorm1d)):
            bn.weight.fill_(100.0)
    sizes = [784 * 3, 3 * 2, 2 * 10]
    penalties = penalty_terms(module)
    assert penalties["l1"] == pytest.approx(0.5 * (1 * sizes[0] + 2 * sizes[1] + 3 * sizes[2]))
    assert penalties["l2"] == pytest.approx(0.25 * (1 * sizes[0] + 4 * sizes[1] + 9 * sizes[2]))


def test_elastic_net_mixes_l1_and_half_l2_by_its_ratio():
    elastic = {"_target_": "mlplab.penalties.ElasticNet", "strength": 0.5, "l1_ratio": 0.3}
    module = Classifier(model=MODEL, loss=LOSS, optimizer=OPTIMIZER, penalties={"elastic_net": elastic})
    weights = list(module.net.weights().values())
    l1, l2 = sum(w.abs().sum() for w in weights), sum(w.pow(2).sum() for w in weights)
    assert penalty_terms(module)["elastic_net"] == pytest.approx((0.5 * (0.3 * l1 + 0.7 / 2 * l2)).item())


def train_once(
    module: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    plan: dict | None = None,
    **trainer_kwargs,
) -> Trainer:
    """Train batches of 8 in order (one epoch unless max_epochs), `steps` per execution, with a bare Trainer."""
    module.plan = Plan(steps, **(plan or {}))  # as Classifier(execution=...) makes it
    trainer_kwargs = {"max_epochs": 1, **trainer_kwargs}
    trainer = Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(module, train_dataloaders=module.executions(TensorLoader(images, labels, 8, train=False)))
    return trainer


def test_penalties_add_their_gradient_to_each_step():
    torch.manual_seed(0)
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    model = {**MODEL, "batch_norm": False}
    plain = Classifier(model=model, loss=LOSS, optimizer=OPTIMIZER)
    strengths = {"l1": {**L1, "strength": 1e-3}, "l2": {**L2, "strength": 1e-2}}
    penalized = Classifier(model=model, loss=LOSS, optimizer=OPTIMIZER, penalties=strengths)
    penalized.load_state_dict(plain.state_dict())
    start = {name: value.clone() for name, value in plain.net.state_dict().items()}
    for module in (plain, penalized):
        train_once(module, images, labels, steps=1)
    for name, weight in start.items():
        # SGD: w - lr * (data gradient + l1 * sign(w) + 2 * l2 * w), on Linear weights only
        penalty = 1e-3 * weight.sign() + 2 * 1e-2 * weight if name.endswith("weight") else 0
        expected = plain.net.state_dict()[name] - OPTIMIZER["lr"] * penalty
        torch.testing.assert_close(penalized.net.state_dict()[name], expected)


def twins(
    model: dict = MODEL, optimizer: dict = OPTIMIZER
) -> tuple[torch.Tensor, torch.Tensor, Classifier, Classifier]:
    """40 random images and their labels, and two modules with the same initial weights."""
    torch.manual_seed(0)
    images, labels = torch.randn(40, 1, 28, 28), torch.randint(0, 10, (40,))
    first = Classifier(model=model, loss=LOSS, optimizer=optimizer)
    second = Classifier(model=model, loss=LOSS, optimizer=optimizer)
    second.load_state_dict(first.state_dict())
    return images, labels, first, second


def test_an_execution_takes_one_optimizer_step_per_batch():
    images, labels, grouped, single = twins()
    # 5 batches: executions of 3 and 2, against 5 of 1
    assert (
        train_once(grouped, images, labels, steps=3).global_step
        == train_once(single, images, labels, 1).global_step
        == 5
    )
    for name, value in single.net.state_dict().items():
        torch.testing.assert_close(grouped.net.state_dict()[name], value)


class ExecutionSizes(Callback):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def on_train_batch_start(self, trainer, module, execution, batch_idx):
        self.sizes.append(execution.size)


def test_a_datamodule_writes_only_its_train_loader_and_the_module_executes_it_by_its_own_plan():
    torch.manual_seed(0)
    images, labels = torch.randn(40, 1, 28, 28), torch.randint(0, 10, (40,))

    class Data(ExecutedDataModule):
        def train_loader(self) -> TensorLoader:
            return TensorLoader(images, labels, 8, train=False)

    module = Classifier(model=MODEL, loss=LOSS, optimizer=OPTIMIZER, execution={"steps_per_execution": 3})
    sizes = ExecutionSizes()
    trainer = Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[sizes]
    )
    trainer.fit(module, datamodule=Data())
    assert sizes.sizes == [3, 2] and trainer.global_step == 5  # 5 batches of 8, in executions of up to 3


def gradient_norm(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in module.parameters()]).norm()


class GradientNorms(Callback):
    """A callback that needs Lightning's step hooks: the gradient norm before every optimizer step."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.norms.append(gradient_norm(module).item())


def test_direct_steps_train_exactly_as_lightnings_and_hooks_still_run_when_a_callback_has_one(monkeypatch):
    backward_calls = []  # Lightning's path: every step's backward goes through the strategy
    strategy_backward = SingleDeviceStrategy.backward
    monkeypatch.setattr(
        SingleDeviceStrategy,
        "backward",
        lambda *args, **kwargs: backward_calls.append(1) or strategy_backward(*args, **kwargs),
    )
    images, labels, direct, hooked = twins(optimizer={**OPTIMIZER, "momentum": 0.9})
    watcher = GradientNorms()
    # The profiler must see each direct step too (it raises on an optimizer_step it did not see start).
    trainer = train_once(direct, images, labels, steps=3, profiler="simple")
    assert trainer.global_step == 5 and len(trainer.profiler.recorded_durations["optimizer_step"]) == 5
    assert direct.direct_steps(LightningOptimizer(trainer.optimizers[0])) and backward_calls == []
    hooked_trainer = train_once(hooked, images, labels, 3, callbacks=[watcher])
    assert hooked_trainer.global_step == 5
    assert not hooked.direct_steps(LightningOptimizer(hooked_trainer.optimizers[0])) and len(backward_calls) == 5
    assert len(watcher.norms) == 5 and all(norm > 0 for norm in watcher.norms)
    for name, value in hooked.net.state_dict().items():
        assert torch.equal(direct.net.state_dict()[name], value), name  # bit for bit


def by_hand(module: Classifier, images: torch.Tensor, labels: torch.Tensor, clip=None) -> None:
    """The lesson's loop on batches of 8, with a gradient clipping function: the reference."""
    optimizer = torch.optim.SGD(module.parameters(), lr=OPTIMIZER["lr"])
    for x, y in zip(images.split(8), labels.split(8), strict=True):
        optimizer.zero_grad()
        nn.functional.cross_entropy(module.net(x), y).backward()
        if clip:
            clip(module.parameters())
        optimizer.step()


PLAIN = {**MODEL, "batch_norm": False}


@pytest.mark.parametrize(
    ("algorithm", "clip"),
    [
        ("norm", lambda parameters: nn.utils.clip_grad_norm_(parameters, 0.05)),
        ("value", lambda parameters: nn.utils.clip_grad_value_(parameters, 0.05)),
    ],
)
def test_gradient_clipping_with_the_trainers_keys_clips_before_every_step(algorithm, clip):
    images, labels, clipped, reference = twins(PLAIN)
    watcher = GradientNorms()  # a callback's on_before_optimizer_step sees the gradients before clipping
    plan = {"gradient_clip_val": 0.05, "gradient_clip_algorithm": algorithm}
    train_once(clipped, images, labels, 3, plan, callbacks=[watcher])
    by_hand(reference, images, labels, clip)
    for name, value in reference.net.state_dict().items():
        torch.testing.assert_close(clipped.net.state_dict()[name], value)
    assert len(watcher.norms) == 5 and watcher.norms[0] > 0.05  # the first step's gradients, unclipped


class Counter(Callback):
    def __init__(self) -> None:
        self.calls = {"on_before_backward": 0, "on_after_backward": 0, "on_before_optimizer_step": 0}

    def on_before_backward(self, trainer, module, loss):
        self.calls["on_before_backward"] += 1

    def on_after_backward(self, trainer, module):
        self.calls["on_after_backward"] += 1

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.calls["on_before_optimizer_step"] += 1


def test_accumulating_five_batches_takes_one_step_on_all_of_them():
    images, labels, accumulated, reference = twins(PLAIN)
    counter = Counter()
    trainer = train_once(accumulated, images, labels, 3, {"accumulate_grad_batches": 5}, callbacks=[counter])
    assert trainer.global_step == 1  # 5 batches of 8 in executions of 3 and 2, one optimizer step
    assert counter.calls == {"on_before_backward": 5, "on_after_backward": 5, "on_before_optimizer_step": 1}
    optimizer = torch.optim.SGD(reference.parameters(), lr=OPTIMIZER["lr"])
    nn.functional.cross_entropy(reference.net(images), labels).backward()  # the 40 images at once
    optimizer.step()
    for name, value in reference.net.state_dict().items():
        torch.testing.assert_close(accumulated.net.state_dict()[name], value)


def test_accumulation_steps_at_every_nth_batch_and_at_the_epochs_last():
    torch.manual_seed(0)
    images, labels = torch.randn(40, 1, 28, 28), torch.randint(0, 10, (40,))
    module = Classifier(model=PLAIN, loss=LOSS, optimizer=OPTIMIZER)
    counter = Counter()
    trainer = train_once(module, images, labels, 2, {"accumulate_grad_batches": 2}, max_epochs=2, callbacks=[counter])
    assert trainer.global_step == 2 * 3  # batches 1-2, 3-4 and 5 of each epoch
    assert counter.calls["on_before_optimizer_step"] == 6 and counter.calls["on_before_backward"] == 10


class LossRecorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.losses: list[tuple[float, int]] = []  # (loss, batch size) of each step

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.cross_entropy(logits, labels)
        self.losses.append((loss.item(), len(labels)))
        return loss


def test_the_logged_training_loss_is_the_mean_over_images_also_under_autocast():
    torch.manual_seed(0)
    images, labels = torch.randn(44, 1, 28, 28), torch.randint(0, 10, (44,))
    module = Classifier(model=MODEL, loss=LOSS, optimizer=OPTIMIZER)
    module.criterion = LossRecorder()
    # Batches of 8, 8, 8 | 8, 8, 4 (executions of 3): the means weigh each batch by its images.
    trainer = train_once(module, images, labels, steps=3, precision="bf16-mixed")
    mean = sum(loss * size for loss, size in module.criterion.losses) / 44
    assert len(module.criterion.losses) == 6
    assert trainer.callback_metrics["train/loss"].item() == pytest.approx(mean, rel=1e-6)


class AfterBackward(Classifier):
    def on_after_backward(self) -> None:
        self.log("grad_norm", gradient_norm(self))


class OwnBackward(Classifier):
    def backward(self, loss: torch.Tensor, *args, **kwargs) -> None:
        (2 * loss).backward(*args, **kwargs)


@pytest.mark.parametrize(
    "trainer_kwargs, module_class, direct",
    [
        ({}, Classifier, True),
        ({"precision": "bf16-mixed"}, Classifier, True),  # autocast only: no loss scaling
        ({}, AfterBackward, False),
        ({}, OwnBackward, False),
        ({"plugins": [MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))]}, Classifier, False),
        ({"precision": "64-true"}, Classifier, False),  # other precision plugins: Lightning's path, to be safe
        ({"strategy": "ddp", "devices": 2}, Classifier, False),  # gradient sync
    ],
    ids=["plain", "bf16-mixed", "module-hook", "own-backward", "loss-scaling", "64-true", "ddp"],
)
def test_steps_go_through_lightning_where_it_adds_more_than_empty_hooks(trainer_kwargs, module_class, direct):
    module = module_class(model=MODEL, loss=LOSS, optimizer=OPTIMIZER)
    module.trainer = Trainer(accelerator="cpu", logger=False, **trainer_kwargs)
    optimizer = LightningOptimizer(torch.optim.SGD(module.parameters(), lr=0.1))
    assert module.direct_steps(optimizer) is direct


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


def test_the_model_summary_lists_the_model_and_not_the_engines_bookkeeping(caplog):
    from mlplab.engine.callbacks import NetworkSummary

    module = Classifier(model=MODEL, loss=LOSS, optimizer=OPTIMIZER)
    assert {"epoch_means", "last_step"} <= {name for name, _ in module.named_children()}  # they are children
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    with caplog.at_level("INFO", logger="lightning.pytorch.callbacks.model_summary"):
        train_once(module, images, labels, steps=1, callbacks=[NetworkSummary()])
    table = "\n".join(record.getMessage() for record in caplog.records)
    rows = [line.split("|") for line in table.splitlines() if "|" in line and line[:1].isdigit()]
    assert [name.strip() for _, name, *_ in rows] == ["net", "criterion", "eval_acc", "eval_loss", "val_acc_best"]
    assert [number.strip() for number, *_ in rows] == list("01234")
